/**
 * #/uploads?month=YYYY-MM: the month's CDA upload statistics per institution, the columns of
 * `hie report uploads` (GET /api/v1/uploads/stats), a chart of accepted and rejected documents per
 * institution and one per day. Roles that may read reports (`patients`) follow an institution, its
 * figures or a rejection reason to the matching uploads.
 */

import { request } from '../../api.js';
import { h, fill } from '../../dom.js';
import { NONE, count, localText, parseTime } from '../../format.js';
import { t } from '../../i18n.js';
import { institutionChart, trendChart } from './charts.js';
import { institutionCell, reportsHref } from './common.js';

const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;

function shiftMonth(month, by) {
  const [year, number] = month.split('-').map(Number);
  const date = new Date(year, number - 1 + by, 1);
  return `${date.getFullYear()}-${String(date.getMonth() + 1).padStart(2, '0')}`;
}

export function create(ctx) {
  const wanted = (ctx.query.get('month') || '').trim();
  const readsReports = ctx.may('patients');
  let data = null;

  async function load() {
    data = await request('GET', '/api/v1/uploads/stats', { params: { month: wanted || null } });
  }

  function go(month) {
    const hash = `#/uploads?month=${encodeURIComponent(month)}`;
    if (hash === location.hash) ctx.reload();
    else location.hash = hash;
  }

  function picker() {
    const input = h('input', { id: 'uploads-month', name: 'month', type: 'month', value: data.month, required: true });
    return h('form', {
      id: 'uploads-month-form', class: 'uploads-month',
      on: {
        submit: (event) => {
          event.preventDefault();
          if (MONTH.test(input.value)) go(input.value);
        },
        change: () => {
          if (MONTH.test(input.value) && input.value !== data.month) go(input.value);
        },
      },
    },
    h('button', { id: 'uploads-prev', type: 'button', class: 'ghost', title: t('uploads.prev'), 'aria-label': t('uploads.prev'), on: { click: () => go(shiftMonth(data.month, -1)) } }, '‹'),
    h('label', { for: 'uploads-month', class: 'visually-hidden' }, t('uploads.month')),
    input,
    h('button', { id: 'uploads-next', type: 'button', class: 'ghost', title: t('uploads.next'), 'aria-label': t('uploads.next'), on: { click: () => go(shiftMonth(data.month, 1)) } }, '›'),
    h('button', { id: 'uploads-show', type: 'submit' }, t('uploads.show')));
  }

  /** The month's uploads of `institution` matching `more` (a link only for roles that may read them). */
  function link(content, institution, more = {}, title = null) {
    if (!readsReports || !institution) return content;
    const filters = { institution, ...more, since: data.since, until: data.until };
    return h('a', { href: reportsHref(filters), title: title || t('uploads.showReports') }, content);
  }

  function numberCell(column, value, institution, more, bad = false) {
    const text = count(value);
    return h('td', { class: ['num', bad && value > 0 ? 'bad' : null], 'data-col': column },
      value > 0 ? link(text, institution, more) : text);
  }

  function ofTotal(done, all) {
    return all.length ? `${done} / ${all.length}` : NONE;
  }

  function completeness(r) {
    if (r.completeness === null || r.completeness === undefined) return h('span', { class: 'muted' }, NONE);
    const level = r.completeness >= 1 ? 'good' : r.completeness > 0 ? 'warn' : 'bad';
    const missing = r.required.filter((c) => !r.uploaded_types.includes(c));
    return h('span', {
      class: ['uploads-complete', `uploads-complete-${level}`],
      title: missing.length ? t('uploads.missing', { codes: missing.join(', ') }) : t('uploads.allUploaded'),
    }, r.completeness_text);
  }

  function reasons(r) {
    if (!r.top_reasons.length) return h('span', { class: 'muted' }, NONE);
    return h('ul', { class: 'uploads-reasons' }, r.top_reasons.map((x) => h('li', { 'data-rule': x.rule },
      link(h('code', {}, x.rule), r.institution, { status: 'rejected', rule: x.rule }, t('uploads.showRule', { rule: x.rule })),
      h('span', { class: 'muted' }, ` ${x.documents}`))));
  }

  function row(r) {
    return h('tr', { 'data-institution': r.institution },
      h('th', { scope: 'row', 'data-col': 'institution' }, link(institutionCell(r.name, r.institution), r.institution)),
      h('td', { class: 'num', 'data-col': 'required', title: r.required.join(', ') }, ofTotal(r.required_uploaded, r.required)),
      h('td', { class: 'num', 'data-col': 'completeness' }, completeness(r)),
      h('td', { class: 'num', 'data-col': 'declared', title: r.declared.join(', ') }, ofTotal(r.declared_uploaded, r.declared)),
      numberCell('received', r.received, r.institution, {}),
      numberCell('accepted', r.accepted, r.institution, { status: 'accepted' }),
      numberCell('rejected', r.rejected, r.institution, { status: 'rejected' }, true),
      h('td', { class: 'num', 'data-col': 'records_received' }, count(r.records_received)),
      h('td', { class: 'num', 'data-col': 'records_accepted' }, count(r.records_accepted)),
      h('td', { class: 'num', 'data-col': 'upload_days' }, count(r.upload_days)),
      h('td', { class: 'num', 'data-col': 'outpatient' }, count(r.outpatient)),
      h('td', { class: 'num', 'data-col': 'discharges' }, count(r.discharges)),
      h('td', { 'data-col': 'reasons' }, reasons(r)));
  }

  const COLUMNS = ['required', 'completeness', 'declared', 'received', 'accepted', 'rejected',
    'records_received', 'records_accepted', 'upload_days', 'outpatient', 'discharges'];

  function table() {
    const rows = data.institutions || [];
    const totals = data.totals || {};
    return h('div', { class: 'table-wrap' },
      h('table', { id: 'uploads-table', class: 'data uploads-table' },
        h('thead', {}, h('tr', {},
          h('th', {}, t('uploads.col.institution')),
          COLUMNS.map((c) => h('th', { class: 'num', title: t(`uploads.col.${c}.hint`) }, t(`uploads.col.${c}`))),
          h('th', {}, t('uploads.col.reasons')))),
        h('tbody', {}, rows.length
          ? rows.map(row)
          : h('tr', {}, h('td', { colspan: COLUMNS.length + 2, class: 'muted empty' }, t('uploads.none')))),
        h('tfoot', {}, h('tr', { 'data-total': '' },
          h('th', { scope: 'row' }, t('uploads.total')),
          h('td', {}), h('td', {}), h('td', {}),
          ['received', 'accepted', 'rejected', 'records_received', 'records_accepted'].map((c) => h('td', { class: 'num', 'data-col': c }, count(totals[c]))),
          h('td', {}),
          ['outpatient', 'discharges'].map((c) => h('td', { class: 'num', 'data-col': c }, count(totals[c]))),
          h('td', {})))));
  }

  function summary() {
    const totals = data.totals || {};
    const rate = totals.received ? `${Math.round((totals.accepted / totals.received) * 100)}%` : NONE;
    const figure = (id, label, value, css = null) => h('div', { id: `uploads-total-${id}`, class: ['uploads-figure', css] },
      h('span', { class: 'uploads-figure-value' }, value), h('span', { class: 'muted' }, t(label)));
    return h('div', { id: 'uploads-summary', class: 'uploads-summary' },
      figure('institutions', 'uploads.institutions', count((data.institutions || []).length)),
      figure('received', 'uploads.received', count(totals.received)),
      figure('accepted', 'uploads.accepted', count(totals.accepted), 'good'),
      figure('rejected', 'uploads.rejected', count(totals.rejected), totals.rejected ? 'bad' : null),
      figure('rate', 'uploads.rate', rate));
  }

  function render(root) {
    const generated = parseTime(data.generated_at);
    fill(root, h('section', { id: 'uploads-page', class: 'page' },
      h('div', { class: 'page-head' },
        h('h1', {}, t('uploads.title')),
        picker(),
        h('span', { class: 'spacer' }),
        readsReports ? h('a', { id: 'uploads-all-reports', href: reportsHref({ since: data.since, until: data.until }) }, t('uploads.allReports')) : null),
      h('p', { class: 'muted small' }, t('uploads.explain', {
        month: data.month, zone: data.timezone, required: (data.required || []).join(', ') || NONE,
        time: generated ? localText(generated) : NONE,
      })),
      summary(),
      h('section', { class: 'card uploads-card' }, h('h2', {}, t('uploads.table.title', { month: data.month })), table()),
      h('div', { class: 'uploads-charts' },
        h('section', { class: 'card' }, h('h2', {}, t('uploads.chart.title')), institutionChart(data.institutions || [])),
        h('section', { class: 'card' }, h('h2', {}, t('uploads.trend.title')), trendChart(data.days || [])))));
  }

  return { title: 'uploads.title', load, render };
}
