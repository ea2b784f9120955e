/**
 * #/uploads/reports?<filters>: uploaded documents newest first (GET /api/v1/uploads/reports; each
 * search is recorded in the audit trail), filtered by institution, outcome, document type, rule and
 * time, the filters in the hash; #uploads-more fetches older ones. Each row opens its report.
 */

import { request } from '../../api.js';
import { h, fill } from '../../dom.js';
import { pagedTable } from '../../paged.js';
import { NONE, localInputFromIso, searchHash, timeEl } from '../../format.js';
import { t } from '../../i18n.js';
import { documentText, institutionCell, outcomeBadge, reportHref } from './common.js';

const FILTERS = ['institution', 'status', 'document_code', 'rule', 'since', 'until'];
const TIMES = new Set(['since', 'until']);
const PAGE_SIZE = 50;

export function create(ctx) {
  const filters = {};
  for (const name of FILTERS) {
    const value = (ctx.query.get(name) || '').trim();
    if (value) filters[name] = value;
  }
  const state = { rows: [], next: null };
  let summary = null;

  const search = (before) => request('GET', '/api/v1/uploads/reports', { params: { ...filters, limit: PAGE_SIZE, before } });

  async function load() {
    const page = await search(null);
    state.rows = page.uploads || [];
    state.next = page.next_before ?? null;
  }

  function submit(event) {
    event.preventDefault();
    const hash = searchHash(event.currentTarget, '#/uploads/reports', FILTERS, TIMES);
    if (hash === location.hash) ctx.reload();
    else location.hash = hash;
  }

  function field(name, control) {
    return h('div', { class: 'field' }, h('label', { for: `uploads-filter-${name}` }, t(`uploads.filter.${name}`)), control);
  }

  function form() {
    const time = (name) => h('input', {
      id: `uploads-filter-${name}`, name, type: 'datetime-local', value: localInputFromIso(filters[name]),
      title: filters[name] ? `UTC ${filters[name]}` : null,
    });
    const text = (name, extra = {}) => h('input', {
      id: `uploads-filter-${name}`, name, value: filters[name] || '', maxlength: 200, autocomplete: 'off', ...extra,
    });
    return h('form', { id: 'uploads-filters', class: 'filters', on: { submit } },
      field('institution', text('institution', { placeholder: '12320100MB1234567X' })),
      field('status', h('select', { id: 'uploads-filter-status', name: 'status' },
        h('option', { value: '' }, t('uploads.filter.any')),
        ['accepted', 'rejected'].map((s) => h('option', { value: s, selected: s === filters.status }, t(`uploads.status.${s}`))))),
      field('document_code', text('document_code', { placeholder: 'C0053', maxlength: 5 })),
      field('rule', text('rule', { placeholder: 'header.patient-name' })),
      field('since', time('since')),
      field('until', time('until')),
      h('div', { class: 'field actions' },
        h('button', { id: 'uploads-search', type: 'submit', class: 'primary' }, t('uploads.filter.search')),
        h('a', { href: '#/uploads/reports', class: 'button ghost' }, t('uploads.filter.clear'))));
  }

  function rules(list) {
    if (!list || !list.length) return h('span', { class: 'muted' }, NONE);
    return list.map((rule, n) => [n ? ', ' : '', h('code', {}, rule)]);
  }

  function row(u) {
    return h('tr', { 'data-upload-id': String(u.id), 'data-status': u.status },
      h('td', { class: 'nowrap' }, h('a', { class: 'report-link', href: reportHref(u.id) }, timeEl(u.received_at))),
      h('td', {}, institutionCell(u.institution_name, u.institution)),
      h('td', {}, documentText(u.document_code, u.document_name)),
      h('td', { class: 'mono small' }, u.document_id || NONE),
      h('td', {}, outcomeBadge(u.status)),
      h('td', { class: ['num', u.errors ? 'bad' : null], 'data-col': 'errors' }, String(u.errors)),
      h('td', { class: 'num', 'data-col': 'warnings' }, String(u.warnings)),
      h('td', { class: 'uploads-rules' }, rules(u.rules)));
  }

  function emptyRow() {
    return h('tr', { class: 'empty-row' }, h('td', { colspan: 8, class: 'muted empty' }, t('uploads.reports.none')));
  }

  function summaryText() {
    return t(state.next !== null ? 'uploads.reports.countMore' : 'uploads.reports.count', { n: state.rows.length });
  }

  function render(root) {
    summary = h('span', { id: 'uploads-count', class: 'muted' }, summaryText());
    fill(root, h('section', { id: 'uploads-reports-page', class: 'page' },
      h('div', { class: 'page-head' },
        h('h1', {}, t('uploads.reports.title')),
        h('a', { href: '#/uploads' }, t('uploads.back'))),
      form(),
      h('div', { class: 'toolbar' }, summary),
      ...pagedTable({
        id: 'uploads-reports',
        head: h('thead', {}, h('tr', {},
          ['received', 'institution', 'document', 'document_id', 'status', 'errors', 'warnings', 'rules']
            .map((c) => h('th', { class: c === 'errors' || c === 'warnings' ? 'num' : null }, t(`uploads.reports.col.${c}`))))),
        state, row, emptyRow,
        fetchPage: async (next) => {
        const page = await search(next);
        return { rows: page.uploads || [], next: page.next_before ?? null };
      },
        moreId: 'uploads-more',
        moreLabel: t('uploads.reports.more'),
        changed: () => { summary.textContent = summaryText(); },
      })));
  }

  return { title: 'uploads.reports.title', load, render };
}
