/**
 * #/audit?<filters>: the audit trail (GET /api/v1/audit), newest first, with #audit-more for older
 * events and #audit-csv downloading the same search as CSV. Filters live in the hash like the
 * message search's.
 */

import { queryString, request } from '../api.js';
import { h, fill } from '../dom.js';
import { pagedTable } from '../paged.js';
import { NONE, codeLabel, codeParts, localInputFromIso, messageHref, searchHash, timeEl } from '../format.js';
import { has, t } from '../i18n.js';

const FILTERS = ['since', 'until', 'patient_id', 'user', 'event_id'];
const TIMES = new Set(['since', 'until']);
const PAGE_SIZE = 100;
const OUTCOMES = { 0: 'success', 4: 'minor', 8: 'serious', 12: 'major' };
const EVENTS = ['110110', '110112', '110106', '110107', '110114', '110113', '110136', '110137', '110100'];

function requestor(participants) {
  const list = Array.isArray(participants) ? participants : [];
  const who = list.find((p) => p.requestor && p.network_access_point) || list.find((p) => p.network_access_point);
  return who ? who.network_access_point : '';
}

function patients(ids) {
  const words = String(ids || '').split(/\s+/).filter(Boolean);
  if (!words.length) return NONE;
  return words.map((w, n) => [n ? ', ' : '', h('span', { class: 'mono', title: w }, w.split('^')[0])]);
}

export function create(ctx) {
  const filters = {};
  for (const name of FILTERS) {
    const value = (ctx.query.get(name) || '').trim();
    if (value) filters[name] = value;
  }
  const state = { rows: [], next: null };

  const search = (before) => request('GET', '/api/v1/audit', { params: { ...filters, limit: PAGE_SIZE, before } });

  async function load() {
    const page = await search(null);
    state.rows = page.events || [];
    state.next = page.next_before ?? null;
  }

  function submit(event) {
    event.preventDefault();
    const hash = searchHash(event.currentTarget, '#/audit', FILTERS, TIMES);
    if (hash === location.hash) ctx.reload();
    else location.hash = hash;
  }

  function field(name, control) {
    return h('div', { class: 'field' }, h('label', { for: `audit-${name}` }, t(`audit.filter.${name}`)), control);
  }

  function form() {
    const time = (name) => h('input', {
      id: `audit-${name}`, name, type: 'datetime-local', value: localInputFromIso(filters[name]),
      title: filters[name] ? `UTC ${filters[name]}` : null,
    });
    const text = (name, extra = {}) => h('input', { id: `audit-${name}`, name, value: filters[name] || '', maxlength: 200, autocomplete: 'off', ...extra });
    return h('form', { id: 'audit-form', class: 'filters', on: { submit } },
      field('since', time('since')),
      field('until', time('until')),
      field('patient_id', text('patient_id')),
      field('user', text('user')),
      field('event_id', text('event_id', { list: 'audit-events', placeholder: '110110' })),
      h('datalist', { id: 'audit-events' }, EVENTS.map((code) => h('option', { value: code }, `${code} ${codeLabel(code)}`))),
      h('div', { class: 'field actions' },
        h('button', { id: 'audit-submit', type: 'submit', class: 'primary' }, t('filter.search')),
        h('a', { href: '#/audit', class: 'button ghost' }, t('filter.clear'))));
  }

  function outcome(value) {
    const word = OUTCOMES[value];
    const label = word ? t(`audit.outcome.${word}`) : String(value);
    return h('span', { class: ['badge', value === 0 ? 'badge-sent' : 'badge-errored'], title: `EventOutcomeIndicator ${value}` }, label);
  }

  function action(code) {
    const key = `audit.action.${code}`;
    return has(key) ? t(key) : String(code || NONE);
  }

  function row(e) {
    const { code } = codeParts(e.event_id);
    const type = e.event_type ? codeLabel(e.event_type) : '';
    return h('tr', { 'data-audit-id': String(e.id) },
      h('td', { class: 'nowrap' }, timeEl(e.event_time)),
      h('td', { title: [e.event_id, e.event_type].filter(Boolean).join(' / ') },
        h('span', { class: 'mono' }, code), ` ${codeLabel(e.event_id)}`,
        type ? h('span', { class: 'muted' }, ` · ${type}`) : null,
        e.outcome_description ? h('div', { class: 'muted small' }, e.outcome_description) : null),
      h('td', {}, action(e.action)),
      h('td', {}, outcome(e.outcome)),
      h('td', {}, e.user_id || NONE),
      h('td', { class: 'mono' }, requestor(e.participants) || NONE),
      h('td', {}, patients(e.patient_ids)),
      h('td', {}, e.channel_id || NONE),
      h('td', { class: 'mono' }, e.message_id !== null && e.message_id !== undefined
        ? (ctx.may('messages') ? h('a', { href: messageHref(e.message_id) }, String(e.message_id)) : String(e.message_id))
        : NONE));
  }

  function render(root) {
    fill(root, h('section', { id: 'audit-page', class: 'page' },
      h('div', { class: 'page-head' }, h('h1', {}, t('audit.title'))),
      form(),
      h('div', { class: 'toolbar' },
        h('span', { class: 'muted' }, t('audit.explain')),
        h('span', { class: 'spacer' }),
        h('a', { id: 'audit-csv', class: 'button', href: `/api/v1/audit.csv${queryString(filters)}`, download: 'audit.csv' }, t('audit.csv'))),
      ...pagedTable({
        id: 'audit-table',
        head: h('thead', {}, h('tr', {},
          ['time', 'event', 'action', 'outcome', 'user', 'network', 'patients', 'channel', 'message'].map((c) => h('th', {}, t(`audit.col.${c}`))))),
        state, row,
        emptyRow: () => h('tr', { class: 'empty-row' }, h('td', { colspan: 9, class: 'muted empty' }, t('audit.none'))),
        fetchPage: async (next) => {
        const page = await search(next);
        return { rows: page.events || [], next: page.next_before ?? null };
      },
        moreId: 'audit-more',
        moreLabel: t('messages.more'),
      })));
  }

  return { title: 'audit.title', load, render };
}
