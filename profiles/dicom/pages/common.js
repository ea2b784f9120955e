/**
 * What the studies pages share: DICOM values as people read them (person names, DA and TM dates,
 * sizes), the badges of a study (patient not reconciled with the EMPI, published in XDS-I.b), and the
 * last search, so that a study's page leads back to it.
 */

import { h } from '../../dom.js';
import { NONE } from '../../format.js';
import { language, t } from '../../i18n.js';

const IDEOGRAPHIC = /[\u3400-\u9fff\uf900-\ufaff]/;
let lastSearch = '#/studies';

/** The hash of the last study search shown (for the study page's way back). */
export function rememberSearch(hash) {
  lastSearch = hash && hash.startsWith('#/studies') ? hash : '#/studies';
}

export function searchHref() {
  return lastSearch;
}

/** The link to a study's page. */
export function studyHref(uid) {
  return `#/studies/${encodeURIComponent(uid)}`;
}

function groupText(group) {
  const parts = group.split('^').map((p) => p.trim()).filter(Boolean);
  return parts.join(IDEOGRAPHIC.test(group) ? '' : ' ');
}

/**
 * A DICOM person name (PN: family^given=ideographic=phonetic) as {main, other}: the ideographic
 * form first when the console speaks Chinese, the alphabetic one otherwise.
 */
export function personName(pn) {
  const groups = String(pn || '').split('=').map(groupText).filter(Boolean);
  if (!groups.length) return { main: '', other: '' };
  const chinese = groups.find((g) => IDEOGRAPHIC.test(g));
  const main = language() === 'zh' && chinese ? chinese : groups[0];
  const other = groups.find((g) => g !== main) || '';
  return { main, other };
}

/** A person name as an element: the main form, the other in grey; the PN as sent in the title. */
export function nameEl(pn, { id = null } = {}) {
  const { main, other } = personName(pn);
  if (!main) return h('span', { id, class: 'muted' }, NONE);
  return h('span', { id, class: 'studies-name', title: pn },
    main, other ? h('span', { class: 'muted' }, ` ${other}`) : null);
}

/** DA "20261201" as "2026-12-01" (as it is when it is not a DA). */
export function daText(da) {
  const value = String(da || '');
  return /^\d{8}$/.test(value) ? `${value.slice(0, 4)}-${value.slice(4, 6)}-${value.slice(6)}` : value;
}

/** TM "103000.123" as "10:30:00". */
export function tmText(tm) {
  const value = String(tm || '');
  const m = value.match(/^(\d{2})(\d{2})?(\d{2})?/);
  if (!m) return value;
  return [m[1], m[2] || '00', m[3]].filter(Boolean).join(':');
}

/** "2026-12-01 10:30:00", or what there is of it; NONE when nothing. */
export function studyWhen(study) {
  const text = [daText(study.study_date), tmText(study.study_time)].filter(Boolean).join(' ');
  return text || NONE;
}

/** 1536 -> "1.5 KB". */
export function bytes(n) {
  if (typeof n !== 'number') return NONE;
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let value = n / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

/** "A1001 ^ HOSP_A": the patient id and its issuer. */
export function patientIdEl(study) {
  return h('span', { class: 'mono' }, study.patient_id || NONE,
    study.issuer ? h('span', { class: 'muted' }, ` ^ ${study.issuer}`) : null);
}

/** The badges of a study: its patient not reconciled with the EMPI; published in XDS-I.b. */
export function studyBadges(study) {
  return [
    study.patient_status === 'unknown'
      ? h('span', { class: 'badge studies-unknown', title: t('studies.unknown.title') }, t('studies.unknown'))
      : null,
    study.published_at
      ? h('span', {
        class: 'badge studies-published',
        title: t('studies.published.title', { manifest: study.manifest_uid || NONE }),
      }, t('studies.published'))
      : null,
  ];
}

/** "M" -> "male" in the console's language; other values as they are. */
export function sexText(sex) {
  const key = { M: 'studies.sex.M', F: 'studies.sex.F', O: 'studies.sex.O' }[String(sex || '').toUpperCase()];
  return key ? t(key) : (sex || '');
}
