/**
 * #/uploads/reports/<id>: one uploaded document and its validation report (GET
 * /api/v1/uploads/reports/<id>; the read is recorded in the audit trail): who sent what and when,
 * the outcome, where it was registered, the message it came in (#/messages/<id>), and every finding,
 * errors first, with its rule, line, message and XPath.
 */

import { request } from '../../api.js';
import { h, fill } from '../../dom.js';
import { NONE, messageHref, timeEl } from '../../format.js';
import { t } from '../../i18n.js';
import { documentText, institutionCell, outcomeBadge, reportsHref } from './common.js';

export function create(ctx, id) {
  let upload = null;

  async function load() {
    upload = await request('GET', `/api/v1/uploads/reports/${encodeURIComponent(id)}`);
  }

  function pair(key, ...value) {
    const shown = value.filter((v) => v !== null && v !== undefined && v !== '');
    return [h('dt', {}, t(key)), h('dd', {}, shown.length ? shown : h('span', { class: 'muted' }, NONE))];
  }

  function metadata(u) {
    const report = u.report || {};
    return h('dl', { id: 'uploads-meta', class: 'meta' },
      pair('uploads.report.id', h('span', { class: 'mono' }, String(u.id))),
      pair('uploads.report.received', timeEl(u.received_at)),
      pair('uploads.report.institution', institutionCell(u.institution_name, u.institution)),
      pair('uploads.report.document', documentText(u.document_code, u.document_name)),
      pair('uploads.report.documentId', u.document_id ? h('span', { class: 'mono' }, u.document_id) : ''),
      pair('uploads.report.title', report.title || ''),
      pair('uploads.report.status', outcomeBadge(u.status)),
      pair('uploads.report.counts', t('uploads.report.countsText', { errors: u.errors, warnings: u.warnings })),
      pair('uploads.report.xds', u.xds_unique_id ? h('span', { id: 'uploads-xds', class: 'mono' }, u.xds_unique_id) : ''),
      pair('uploads.report.patient', u.patient_id ? h('span', { class: 'mono' }, u.patient_id) : ''),
      pair('uploads.report.message', u.message_id !== null && u.message_id !== undefined
        ? h('a', { id: 'uploads-message-link', href: messageHref(u.message_id) }, t('uploads.report.openMessage', { id: u.message_id }))
        : ''));
  }

  function refusal(report) {
    if (!report.refused) return null;
    return h('div', { id: 'uploads-refused', class: 'error-box' },
      h('h2', {}, t('uploads.report.refused')),
      h('p', { class: 'error-text-full' }, report.refused));
  }

  function findings(list) {
    if (!list.length) return h('p', { id: 'uploads-no-findings', class: 'muted empty' }, t('uploads.report.noFindings'));
    return h('div', { class: 'table-wrap' },
      h('table', { id: 'uploads-findings', class: 'data' },
        h('thead', {}, h('tr', {},
          ['severity', 'rule', 'line', 'message', 'xpath'].map((c) => h('th', { class: c === 'line' ? 'num' : null }, t(`uploads.finding.${c}`))))),
        h('tbody', {}, list.map((f) => h('tr', { 'data-rule': f.rule, 'data-severity': f.severity, class: `finding-${f.severity}` },
          h('td', {}, h('span', { class: ['badge', `uploads-${f.severity}`] }, t(`uploads.severity.${f.severity === 'error' ? 'error' : 'warning'}`))),
          h('td', {}, h('code', {}, f.rule)),
          h('td', { class: 'num' }, f.line ? String(f.line) : NONE),
          h('td', { class: 'uploads-message' }, f.message),
          h('td', { class: 'mono small uploads-xpath' }, f.xpath || NONE))))));
  }

  function render(root) {
    const report = upload.report || {};
    const list = Array.isArray(report.findings) ? report.findings : [];
    const back = upload.institution
      ? reportsHref({ institution: upload.institution, status: upload.status })
      : reportsHref();
    fill(root, h('section', { id: 'uploads-report-page', class: 'page' },
      h('div', { class: 'page-head' },
        h('h1', {}, t('uploads.report.heading', { document: documentText(upload.document_code, upload.document_name) }), ' ', outcomeBadge(upload.status)),
        h('a', { id: 'uploads-back', href: back }, t('uploads.report.back'))),
      h('p', { id: 'audit-notice', class: 'audit-notice' }, t('uploads.report.auditNotice')),
      h('section', { class: 'card' }, metadata(upload)),
      refusal(report),
      h('section', { class: 'card uploads-card' },
        h('h2', {}, t('uploads.report.findings', { errors: upload.errors, warnings: upload.warnings })),
        findings(list))));
  }

  return { title: 'uploads.report.pageTitle', load, render };
}
