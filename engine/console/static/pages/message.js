/**
 * #/messages/<id>: one message (GET /api/v1/messages/<id>; the read is recorded in the audit trail):
 * its metadata, then its stages side by side: what was received, the transformed content, and per
 * destination what was sent and answered, with the attempt log. HL7 v2 stages can be read as text or
 * segment by segment. Admins and integrators may reprocess it to some or all of its destinations.
 */

import { request } from '../api.js';
import { h, fill } from '../dom.js';
import { NONE, count, messageHref, statusBadge, timeEl } from '../format.js';
import { t } from '../i18n.js';

const VIEW_KEY = 'hie.stageView';

function storedView() {
  try {
    return localStorage.getItem(VIEW_KEY) === 'segments' ? 'segments' : 'text';
  } catch {
    return 'text';
  }
}

function hl7Lines(text) {
  return String(text).replace(/\r\n|\r|\n/g, '\n').replace(/\n+$/, '');
}

/** The segment-by-segment table of a stage: a row per segment, then a row per non-empty field. */
function segmentTable(segments, id) {
  return h('table', { id, class: 'segments data' },
    h('thead', {}, h('tr', {},
      h('th', {}, t('segments.position')), h('th', {}, t('segments.name')), h('th', {}, t('segments.value')))),
    h('tbody', {}, segments.map((seg) => [
      h('tr', { class: 'segment', 'data-segment': seg.name },
        h('th', { colspan: 3 }, seg.name, h('span', { class: 'muted' }, ` #${seg.index}`))),
      (seg.fields || []).map((f) => h('tr', { 'data-field': f.position },
        h('td', { class: 'mono nowrap' }, f.position),
        h('td', {}, f.name || h('span', { class: 'muted' }, NONE)),
        h('td', { class: 'mono value' }, f.value))),
    ])));
}

/** What a stage holds: its text (HL7 segments on separate lines), and its segment table if HL7. */
function stageBody(stage, { segmentsId = null, none = 'stage.none' } = {}) {
  if (stage === null || stage === undefined) return h('p', { class: 'muted' }, t(none));
  if (typeof stage === 'string') return h('pre', { class: 'stage-text' }, hl7Lines(stage));
  const segments = Array.isArray(stage.segments) && stage.segments.length ? stage.segments : null;
  return h('div', { class: ['stage-body', segments ? 'has-segments' : null] },
    h('p', { class: 'muted small' }, t('stage.bytes', { n: count(stage.bytes) })),
    h('pre', { class: 'stage-text' }, hl7Lines(stage.text ?? '')),
    segments ? segmentTable(segments, segmentsId) : null);
}

export function create(ctx) {
  const id = ctx.params[0];
  const state = { msg: null, reprocessed: null, panelOpen: false, busy: false };
  let view = storedView();
  let root = null;

  async function load() {
    state.msg = await request('GET', `/api/v1/messages/${encodeURIComponent(id)}`);
  }

  // -- metadata ----------------------------------------------------------------------------------
  function pair(key, ...value) {
    const shown = value.filter((v) => v !== null && v !== undefined && v !== '');
    return [h('dt', {}, t(key)), h('dd', {}, shown.length ? shown : h('span', { class: 'muted' }, NONE))];
  }

  function appAndFacility(app, facility) {
    return app || facility ? `${app || NONE} / ${facility || NONE}` : '';
  }

  function identifiers(ids) {
    if (!ids || !ids.length) return '';
    return h('ul', { class: 'compact' }, ids.map((i) => h('li', {},
      h('span', { class: 'mono' }, i.value),
      i.authority ? h('span', { class: 'muted' }, ` ^ ${i.authority}`) : null,
      h('span', { class: 'muted small' }, ` (${[i.id_type, i.field].filter(Boolean).join(', ') || NONE})`))));
  }

  function copies(ids) {
    if (!ids || !ids.length) return '';
    return ids.map((c, n) => [n ? ', ' : '', h('a', { href: messageHref(c) }, String(c))]);
  }

  function warnings(text) {
    if (!text) return null;
    let list;
    try {
      const parsed = JSON.parse(text);
      list = Array.isArray(parsed) ? parsed.map(String) : [String(text)];
    } catch {
      list = [String(text)];
    }
    return h('div', { class: 'warnings' }, h('h2', {}, t('message.warnings')),
      h('ul', { class: 'compact' }, list.map((w) => h('li', {}, w))));
  }

  function metadata(m) {
    return h('dl', { class: 'meta' },
      pair('message.id', h('span', { class: 'mono' }, String(m.id))),
      pair('message.channel', m.channel_id),
      pair('message.received', timeEl(m.received_at)),
      pair('message.updated', timeEl(m.updated_at)),
      pair('message.type', m.message_type ? h('span', { class: 'mono' }, m.message_type) : ''),
      pair('message.controlId', m.control_id ? h('span', { class: 'mono' }, m.control_id) : ''),
      pair('message.sending', appAndFacility(m.sending_application, m.sending_facility)),
      pair('message.receiving', appAndFacility(m.receiving_application, m.receiving_facility)),
      pair('message.peer', m.peer),
      pair('message.contentType', [m.content_type, m.charset].filter(Boolean).join(' · ')),
      pair('message.status', statusBadge(m.status)),
      pair('message.reprocessedFrom', m.reprocessed_from ? h('a', { href: messageHref(m.reprocessed_from) }, String(m.reprocessed_from)) : ''),
      pair('message.reprocessedAs', copies(m.reprocessed_as)),
      pair('message.identifiers', identifiers(m.identifiers)));
  }

  function errorBox(m) {
    if (!m.error && !m.error_detail) return null;
    return h('div', { class: 'error-box' },
      h('h2', {}, t('message.error')),
      m.error ? h('p', { class: 'error-text-full' }, m.error) : null,
      m.error_detail ? h('pre', { class: 'error-detail' }, m.error_detail) : null);
  }

  // -- reprocessing ------------------------------------------------------------------------------
  function destinationsOf(m) {
    return [...new Set((m.deliveries || []).map((d) => d.destination))];
  }

  function reprocessResult() {
    const box = h('div', { id: 'reprocess-result', class: 'result', 'aria-live': 'polite' });
    const r = state.reprocessed;
    const created = r ? (r.message_id ?? r.id) : null; // the contract's name, and the engine's older "id"
    if (created !== null && created !== undefined) {
      box.append(h('p', { class: 'notice' }, t('reprocess.done'), ' ',
        h('a', { href: messageHref(created) }, t('reprocess.newMessage', { id: created }))));
    }
    return box;
  }

  async function confirmReprocess(panel, button) {
    const chosen = [...panel.querySelectorAll('input[name="reprocess-destination"]:checked')].map((i) => i.value);
    const all = destinationsOf(state.msg);
    const hint = panel.querySelector('.form-error');
    if (all.length && !chosen.length) {
      hint.textContent = t('reprocess.chooseOne');
      hint.hidden = false;
      return;
    }
    hint.hidden = true;
    button.disabled = true;
    state.busy = true;
    try {
      state.reprocessed = await request('POST', `/api/v1/messages/${encodeURIComponent(id)}/reprocess`, {
        body: all.length ? { destinations: chosen } : {},
      });
      document.getElementById('reprocess-result').replaceWith(reprocessResult());
    } catch {
      // shown in the banner
    } finally {
      state.busy = false;
      button.disabled = false;
    }
  }

  function reprocessPanel(m) {
    if (!ctx.may('reprocess')) return null;
    const dests = destinationsOf(m);
    const confirm = h('button', { id: 'reprocess-confirm', type: 'button', class: 'warn', disabled: state.busy }, t('reprocess.confirm'));
    const panel = h('div', { id: 'reprocess-panel', class: 'panel', hidden: !state.panelOpen },
      h('p', {}, dests.length ? t('reprocess.explain') : t('reprocess.noDeliveries')),
      dests.length
        ? h('fieldset', { class: 'checks' }, h('legend', {}, t('reprocess.destinations')),
          dests.map((d) => h('label', { class: 'check' },
            h('input', { type: 'checkbox', name: 'reprocess-destination', value: d, checked: true }), ` ${d}`)))
        : null,
      h('p', { class: 'form-error', role: 'alert', hidden: true }),
      h('div', { class: 'actions' },
        confirm,
        h('button', { type: 'button', on: { click: () => { state.panelOpen = false; panel.hidden = true; } } }, t('common.cancel'))));
    confirm.addEventListener('click', () => confirmReprocess(panel, confirm));
    const open = h('button', {
      id: 'reprocess-button', type: 'button', class: 'warn', disabled: m.pruned,
      title: m.pruned ? t('reprocess.pruned') : null,
      on: { click: () => { state.panelOpen = true; panel.hidden = false; } },
    }, t('reprocess.button'));
    return h('section', { class: 'reprocess' }, open, panel, reprocessResult());
  }

  // -- stages ------------------------------------------------------------------------------------
  function attemptLog(log) {
    if (!log || !log.length) return null;
    return h('details', { class: 'attempts' },
      h('summary', {}, t('delivery.attemptLog', { n: log.length })),
      h('table', { class: 'data small' },
        h('thead', {}, h('tr', {},
          ['attempt', 'at', 'outcome', 'duration', 'error'].map((c) => h('th', {}, t(`delivery.col.${c}`))))),
        h('tbody', {}, log.map((a) => [
          h('tr', {},
            h('td', { class: 'num' }, String(a.attempt)),
            h('td', { class: 'nowrap' }, timeEl(a.at)),
            h('td', {}, statusBadge(a.outcome)),
            h('td', { class: 'num' }, typeof a.duration_ms === 'number' ? `${Math.round(a.duration_ms)} ms` : NONE),
            h('td', { class: 'error-text' }, a.error || '')),
          a.response ? h('tr', {}, h('td', { colspan: 5 }, h('details', {},
            h('summary', {}, t('delivery.attemptResponse')), stageBody(a.response)))) : null,
        ]))));
  }

  function deliveryStage(d) {
    const sent = d.sent === 'unchanged'
      ? h('p', { class: 'muted' }, t('delivery.unchanged'))
      : stageBody(d.sent, { none: d.status === 'filtered' ? 'delivery.notSentFiltered' : 'delivery.notSent' });
    return h('div', { class: 'stage', 'data-destination': d.destination },
      h('h3', {}, d.destination, ' ', statusBadge(d.status)),
      h('p', { class: 'muted small' },
        t('message.attempts', { n: d.attempts }), ' · ', t('delivery.created'), ' ', timeEl(d.created_at),
        d.sent_at ? [' · ', t('delivery.sentAt'), ' ', timeEl(d.sent_at)] : null),
      d.last_error ? h('p', { class: 'error-text-full' }, d.last_error) : null,
      h('h4', {}, t('delivery.sent')), sent,
      h('h4', {}, t('delivery.response')), stageBody(d.response, { none: 'delivery.noResponse' }),
      attemptLog(d.attempt_log));
  }

  function setView(mode) {
    view = mode;
    try {
      localStorage.setItem(VIEW_KEY, mode);
    } catch {
      // kept for this page only
    }
    const box = document.getElementById('stages');
    if (!box) return;
    box.classList.toggle('view-segments', mode === 'segments');
    for (const button of box.querySelectorAll('.view-toggle button')) {
      button.setAttribute('aria-pressed', String(button.value === mode));
    }
  }

  function stages(m) {
    const anySegments = [m.raw, ...(m.deliveries || []).flatMap((d) => [d.sent, d.response])]
      .some((s) => s && typeof s === 'object' && Array.isArray(s.segments) && s.segments.length);
    const toggle = anySegments
      ? h('div', { class: 'view-toggle', role: 'group', 'aria-label': t('stage.view') },
        ['text', 'segments'].map((mode) => h('button', {
          id: `view-${mode}`, type: 'button', value: mode, 'aria-pressed': String(view === mode),
          on: { click: () => setView(mode) },
        }, t(`stage.view.${mode}`))))
      : null;
    const raw = m.pruned
      ? h('p', { class: 'notice' }, t('message.pruned'))
      : stageBody(m.raw, { segmentsId: 'segments' });
    return h('section', { id: 'stages', class: ['stages', view === 'segments' ? 'view-segments' : null] },
      h('div', { class: 'stages-head' }, h('h2', {}, t('stage.title')), toggle),
      h('div', { class: 'stage-columns' },
        h('div', { id: 'stage-raw', class: 'stage' }, h('h3', {}, t('stage.raw')), raw),
        m.content !== null && m.content !== undefined
          ? h('div', { id: 'stage-content', class: 'stage' }, h('h3', {}, t('stage.content')), stageBody(m.content))
          : null,
        (m.deliveries || []).map(deliveryStage)));
  }

  function render(target) {
    root = target;
    const m = state.msg;
    fill(root, h('article', { id: 'message', class: 'page', 'data-message-id': String(m.id) },
      h('div', { class: 'page-head' },
        h('h1', {}, t('message.title', { id: m.id }), ' ', statusBadge(m.status)),
        h('a', { href: '#/messages', class: 'muted' }, t('message.back'))),
      h('p', { id: 'audit-notice', class: 'audit-notice' }, t('message.auditNotice')),
      h('div', { class: 'message-top' },
        h('section', { class: 'card' }, metadata(m)),
        h('div', { class: 'side' }, errorBox(m), warnings(m.warnings), reprocessPanel(m))),
      stages(m)));
  }

  return { title: 'message.pageTitle', load, render };
}
