/**
 * #/messages?<filters>: the message search. The filters live in the hash, so a search is a link to
 * share and back/forward step through searches; #more fetches older results; admins and integrators
 * may reprocess everything a filtered search matches (POST /api/v1/reprocess), after a confirmation.
 */

import { request } from '../api.js';
import { h, fill } from '../dom.js';
import { pagedTable } from '../paged.js';
import { NONE, localInputFromIso, messageHref, searchHash, statusBadge, timeEl } from '../format.js';
import { t } from '../i18n.js';

export const FILTERS = ['channel', 'status', 'since', 'until', 'type', 'control_id', 'patient_id', 'facility', 'destination', 'text'];
const TIMES = new Set(['since', 'until']);
const TEXTS = ['type', 'control_id', 'patient_id', 'facility', 'destination', 'text'];
const STATUSES = ['received', 'filtered', 'queued', 'pending', 'sent', 'errored'];
const PAGE_SIZE = 50;

/** The filters of a hash query, in FILTERS order, empty ones left out. */
export function filtersFrom(query) {
  const out = {};
  for (const name of FILTERS) {
    const value = (query.get(name) || '').trim();
    if (value) out[name] = value;
  }
  return out;
}

export function create(ctx) {
  const filters = filtersFrom(ctx.query);
  const filtered = Object.keys(filters).length > 0;
  const mayReprocess = ctx.may('reprocess');
  const state = { channels: [], rows: [], next: null, searched: false, bulk: null, bulkBusy: false };
  let summary = null;

  const search = (before) => request('GET', '/api/v1/messages', { params: { ...filters, limit: PAGE_SIZE, before } });

  async function load() {
    const [channels, found] = await Promise.allSettled([request('GET', '/api/v1/channels'), search(null)]);
    if (channels.status === 'fulfilled') state.channels = channels.value.channels || [];
    if (found.status === 'fulfilled') {
      state.rows = found.value.messages || [];
      state.next = found.value.next_before ?? null;
      state.searched = true;
    }
  }

  // -- the form ----------------------------------------------------------------------------------
  function submit(event) {
    event.preventDefault();
    const hash = searchHash(event.currentTarget, '#/messages', FILTERS, TIMES);
    if (hash === location.hash) ctx.reload();
    else location.hash = hash;
  }

  function field(name, control) {
    return h('div', { class: 'field' }, h('label', { for: `search-${name}` }, t(`filter.${name}`)), control);
  }

  function channelSelect() {
    const ids = state.channels.map((c) => c.id);
    if (filters.channel && !ids.includes(filters.channel)) ids.push(filters.channel);
    const about = Object.fromEntries(state.channels.map((c) => [c.id, c.description]));
    return h('select', { id: 'search-channel', name: 'channel' },
      h('option', { value: '' }, t('filter.any')),
      ids.map((id) => h('option', { value: id, selected: id === filters.channel, title: about[id] || null }, id)));
  }

  function statusSelect() {
    return h('select', { id: 'search-status', name: 'status' },
      h('option', { value: '' }, t('filter.any')),
      STATUSES.map((s) => h('option', { value: s, selected: s === filters.status }, t(`status.${s}`))));
  }

  function destinations() {
    const ids = new Set();
    for (const c of state.channels) for (const d of c.destinations || []) ids.add(d.id);
    return h('datalist', { id: 'known-destinations' }, [...ids].sort().map((id) => h('option', { value: id })));
  }

  function form() {
    const timeInput = (name) => h('input', {
      id: `search-${name}`, name, type: 'datetime-local', value: localInputFromIso(filters[name]),
      title: filters[name] ? `UTC ${filters[name]}` : null,
    });
    const textInput = (name) => h('input', {
      id: `search-${name}`, name, value: filters[name] || '', maxlength: 200, autocomplete: 'off',
      list: name === 'destination' ? 'known-destinations' : null, placeholder: t(`filter.${name}.hint`),
    });
    return h('form', { id: 'search-form', class: 'filters', on: { submit } },
      field('channel', channelSelect()),
      field('status', statusSelect()),
      field('since', timeInput('since')),
      field('until', timeInput('until')),
      TEXTS.map((name) => field(name, textInput(name))),
      destinations(),
      h('div', { class: 'field actions' },
        h('button', { id: 'search-submit', type: 'submit', class: 'primary' }, t('filter.search')),
        h('a', { href: '#/messages', class: 'button ghost' }, t('filter.clear'))));
  }

  // -- results -----------------------------------------------------------------------------------
  function deliveryBadges(m) {
    return (m.deliveries || []).map((d) => h('span', {
      class: 'delivery', title: [t('message.attempts', { n: d.attempts }), d.last_error || ''].filter(Boolean).join(' — '),
    }, statusBadge(d.status, d.destination)));
  }

  function row(m) {
    return h('tr', { 'data-message-id': String(m.id) },
      h('td', { class: 'nowrap' }, h('a', { class: 'message-link', href: messageHref(m.id) }, timeEl(m.received_at))),
      h('td', {}, m.channel_id),
      h('td', { class: 'mono' }, m.message_type || NONE),
      h('td', { class: 'mono' }, m.control_id || NONE,
        m.reprocessed_from ? h('span', { class: 'tag', title: t('messages.reprocessedFrom', { id: m.reprocessed_from }) }, ' ↻') : null),
      h('td', {}, m.sending_facility || NONE),
      h('td', {}, statusBadge(m.status)),
      h('td', { class: 'deliveries' }, deliveryBadges(m)),
      h('td', { class: 'error-text', title: m.error || '' }, m.error || ''));
  }

  function emptyRow() {
    return h('tr', { class: 'empty-row' }, h('td', { colspan: 8, class: 'muted empty' },
      state.searched ? t('messages.none') : t('common.unavailable')));
  }

  function summaryText() {
    return t(state.next !== null ? 'messages.countMore' : 'messages.count', { n: state.rows.length });
  }

  function results() {
    return pagedTable({
      id: 'results',
      head: h('thead', {}, h('tr', {},
        ['received', 'channel', 'type', 'control_id', 'facility', 'status', 'deliveries', 'error']
          .map((c) => h('th', {}, t(`messages.col.${c}`))))),
      state, row, emptyRow,
      fetchPage: async (next) => {
        const page = await search(next);
        return { rows: page.messages || [], next: page.next_before ?? null };
      },
      moreId: 'more',
      moreLabel: t('messages.more'),
      changed: () => { summary.textContent = summaryText(); },
    });
  }

  // -- bulk reprocess ----------------------------------------------------------------------------
  function bulkResult() {
    const box = h('div', { id: 'bulk-result', class: 'result', 'aria-live': 'polite' });
    const r = state.bulk;
    if (!r) return box;
    const done = r.reprocessed || [];
    const skipped = r.skipped || [];
    box.append(h('p', { class: 'notice' }, t('bulk.result', { matched: r.matched, reprocessed: done.length, skipped: skipped.length })));
    if (done.length) {
      box.append(h('ul', { class: 'compact' }, done.slice(0, 50).map((x) => h('li', {},
        h('a', { href: messageHref(x.original) }, String(x.original)), ' → ',
        h('a', { href: messageHref(x.message_id ?? x.id) }, String(x.message_id ?? x.id))))));
    }
    if (skipped.length) {
      box.append(h('ul', { class: 'compact' }, skipped.slice(0, 50).map((x) => h('li', {},
        h('a', { href: messageHref(x.id) }, String(x.id)), `: ${x.reason}`))));
    }
    return box;
  }

  async function runBulk(dialog, button) {
    dialog.close();
    button.disabled = true;
    state.bulkBusy = true;
    try {
      state.bulk = await request('POST', '/api/v1/reprocess', { body: { filter: filters } });
      document.getElementById('bulk-result').replaceWith(bulkResult());
    } catch {
      // shown in the banner
    } finally {
      state.bulkBusy = false;
      button.disabled = false;
    }
  }

  function bulk() {
    if (!mayReprocess || !filtered) return [];
    const button = h('button', { id: 'bulk-reprocess', type: 'button', class: 'warn', disabled: state.bulkBusy }, t('bulk.button'));
    const dialog = h('dialog', { id: 'bulk-dialog', 'aria-labelledby': 'bulk-dialog-title' },
      h('h2', { id: 'bulk-dialog-title' }, t('bulk.title')),
      h('p', {}, t('bulk.explain')),
      h('ul', { class: 'compact mono' }, Object.entries(filters).map(([k, v]) => h('li', {}, `${t(`filter.${k}`)}: ${v}`))),
      h('div', { class: 'actions' },
        h('button', { id: 'bulk-cancel', type: 'button', on: { click: () => dialog.close() } }, t('common.cancel')),
        h('button', { id: 'bulk-confirm', type: 'button', class: 'warn', on: { click: () => runBulk(dialog, button) } }, t('bulk.confirm'))));
    button.addEventListener('click', () => dialog.showModal());
    return [button, dialog];
  }

  function render(root) {
    summary = h('span', { class: 'muted' }, state.searched ? summaryText() : '');
    fill(root, h('section', { id: 'messages-page', class: 'page' },
      h('div', { class: 'page-head' }, h('h1', {}, t('messages.title'))),
      form(),
      h('div', { class: 'toolbar' }, summary, h('span', { class: 'spacer' }), bulk()),
      bulkResult(),
      results()));
  }

  return { title: 'messages.title', load, render };
}
