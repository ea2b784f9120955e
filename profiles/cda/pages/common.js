/** What the uploads pages share: the links between them, the outcome badge, document names. */

import { queryString } from '../../api.js';
import { h } from '../../dom.js';
import { NONE } from '../../format.js';
import { t } from '../../i18n.js';

/** The hash of the reports list for `filters` ({institution, status, rule, since, until, ...}). */
export function reportsHref(filters = {}) {
  return `#/uploads/reports${queryString(filters)}`;
}

/** The hash of one upload's report. */
export function reportHref(id) {
  return `#/uploads/reports/${encodeURIComponent(String(id))}`;
}

/** accepted (green) or rejected (red). */
export function outcomeBadge(status) {
  const known = status === 'accepted' || status === 'rejected';
  return h('span', { class: ['badge', known ? `uploads-${status}` : null] }, known ? t(`uploads.status.${status}`) : String(status || NONE));
}

/** "C0053 出院小结" (the code alone when it is not a WS/T 500 type). */
export function documentText(code, name) {
  if (!code) return NONE;
  return name ? `${code} ${name}` : code;
}

/** An institution as its name with its code beneath. */
export function institutionCell(name, code) {
  return [
    h('span', { class: 'uploads-name' }, name || (code ? '' : t('uploads.noInstitution'))),
    code ? h('span', { class: 'mono muted small uploads-code' }, code) : null,
  ];
}
