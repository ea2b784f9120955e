/**
 * How values look on every page: times (local, with the UTC ISO form in the title), status badges,
 * DICOM codes, the datetime-local <-> ISO UTC conversion of search forms.
 */

import { queryString } from './api.js';
import { h } from './dom.js';
import { has, t } from './i18n.js';

export const NONE = '—';

const pad = (n, width = 2) => String(n).padStart(width, '0');

/** A Date from the API's ISO text (microseconds are cut to milliseconds); null when there is none. */
export function parseTime(iso) {
  if (!iso) return null;
  const date = new Date(String(iso).replace(/(\.\d{3})\d+/, '$1'));
  return Number.isNaN(date.getTime()) ? null : date;
}

/** "2026-11-22 08:30:05" in local time. */
export function localText(date, { seconds = true } = {}) {
  const day = `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
  const time = `${pad(date.getHours())}:${pad(date.getMinutes())}`;
  return `${day} ${time}${seconds ? `:${pad(date.getSeconds())}` : ''}`;
}

/** A <time> showing local time, its UTC ISO form as the tooltip. */
export function timeEl(iso) {
  const date = parseTime(iso);
  if (!date) return h('span', { class: 'muted' }, NONE);
  const utc = date.toISOString();
  return h('time', { datetime: utc, title: `UTC ${utc}` }, localText(date));
}

/** "5 min", "3 h", "2 d": how long ago `iso` was. */
export function age(iso, now = new Date()) {
  const date = parseTime(iso);
  if (!date) return NONE;
  const minutes = Math.max(0, Math.round((now - date) / 60000));
  if (minutes < 120) return t('time.minutes', { n: minutes });
  const hours = Math.round(minutes / 60);
  if (hours < 48) return t('time.hours', { n: hours });
  return t('time.days', { n: Math.round(hours / 24) });
}

/** A coloured badge for a message or delivery status (sent green, queued amber, errored red...). */
export function statusBadge(status, label) {
  const key = `status.${status}`;
  const text = has(key) ? t(key) : String(status);
  return h('span', { class: ['badge', `badge-${String(status).replace(/[^a-z]/g, '')}`] }, label ? `${label}: ${text}` : text);
}

/** The value of a datetime-local input as ISO UTC ("" when empty or not a date). */
export function isoFromLocalInput(value) {
  if (!value) return '';
  const date = new Date(value); // datetime-local values have no offset: local time
  return Number.isNaN(date.getTime()) ? '' : date.toISOString();
}

/** An ISO time as a datetime-local input's value (local time); "" when it is not a date. */
export function localInputFromIso(iso) {
  const date = parseTime(iso);
  if (!date) return '';
  return localText(date, { seconds: false }).replace(' ', 'T');
}

/** "110110^Patient Record^DCM" -> {code: "110110", display: "Patient Record"}. */
export function codeParts(coded) {
  const [code = '', display = ''] = String(coded || '').split('^');
  return { code, display };
}

/** The display of a DICOM code in the current language (the record's own display otherwise). */
export function codeLabel(coded) {
  const { code, display } = codeParts(coded);
  const key = `dicom.${code}`;
  return has(key) ? t(key) : display || code;
}

/** The link to a message's page. */
export function messageHref(id) {
  return `#/messages/${encodeURIComponent(String(id))}`;
}

/** A number with thousands separators. */
export function count(n) {
  return typeof n === 'number' ? n.toLocaleString('en-US') : NONE;
}

/** The hash a search form asks for: `route` and the form's non-empty fields in `names` order, those
 *  in `times` (datetime-local) as ISO UTC. */
export function searchHash(form, route, names, times) {
  const data = new FormData(form);
  const chosen = {};
  for (const name of names) {
    let value = String(data.get(name) || '').trim();
    if (times.has(name)) value = isoFromLocalInput(value);
    if (value) chosen[name] = value;
  }
  return `${route}${queryString(chosen)}`;
}
