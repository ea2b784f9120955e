/** #/studies: the archive's DICOM studies (list.js); #/studies/<Study Instance UID>: one of them (study.js). */

import * as list from './list.js';
import * as study from './study.js';

export function create(ctx) {
  return ctx.params.length ? study.create(ctx) : list.create(ctx);
}
