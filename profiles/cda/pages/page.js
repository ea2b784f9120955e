/**
 * The uploads section: #/uploads (the month's statistics per institution, with charts),
 * #/uploads/reports?<filters> (the uploads and their outcome) and #/uploads/reports/<id> (one
 * document's validation report).
 */

import * as report from './report.js';
import * as reports from './reports.js';
import * as stats from './stats.js';

export function create(ctx) {
  const [first, id] = ctx.params;
  if (first === 'reports' && id) return report.create(ctx, id);
  if (first === 'reports') return reports.create(ctx);
  return stats.create(ctx);
}
