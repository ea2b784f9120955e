/**
 * #/dashboard: per-channel counts over the last 24 hours and whether each source listens, the hourly
 * chart, queue depths per destination, and the last hour's errors (GET /api/v1/dashboard), refreshed
 * every 15 seconds while the page is shown.
 */

import { queryString, request } from '../api.js';
import { hourlyChart } from '../chart.js';
import { h, fill } from '../dom.js';
import { NONE, age, count, localText, messageHref, parseTime, timeEl } from '../format.js';
import { t } from '../i18n.js';

const HOURS = 24;
const REFRESH_MS = 15000;
const COLUMNS = ['received', 'filtered', 'queued', 'sent', 'errored'];

export function create(ctx) {
  let data = null;
  let root = null;
  let timer = null;
  let busy = false;
  let stopped = false;
  const readsMessages = ctx.may('messages');

  async function load() {
    data = await request('GET', '/api/v1/dashboard', { params: { hours: HOURS } });
  }

  async function refresh() {
    if (busy || stopped || document.hidden) return;
    busy = true;
    try {
      await load();
      if (!stopped && root) render(root);
    } catch {
      // the banner says what went wrong; the figures shown stay until the next refresh
    } finally {
      busy = false;
    }
  }

  function messagesLink(text, filters) {
    if (!readsMessages || !text || text === '0') return text;
    return h('a', { href: `#/messages${queryString(filters)}`, title: t('dashboard.showMessages') }, text);
  }

  function since() {
    const generated = parseTime(data.generated_at) || new Date();
    return new Date(generated.getTime() - data.hours * 3600 * 1000).toISOString();
  }

  function listening(value) {
    if (value === true) return h('span', { class: 'state state-up' }, t('dashboard.listening'));
    if (value === false) return h('span', { class: 'state state-down' }, t('dashboard.notListening'));
    return h('span', { class: 'muted', title: t('dashboard.noListener') }, NONE);
  }

  function cell(channel, column, value) {
    let content = count(value);
    if (channel && (column === 'received' || column === 'errored')) {
      const filters = { channel, since: since(), status: column === 'errored' ? 'errored' : null };
      content = messagesLink(content, filters);
    }
    return h('td', { 'data-col': column, class: ['num', column === 'errored' && value > 0 ? 'bad' : null] }, content);
  }

  function channelTable() {
    const channels = data.channels || [];
    return h('div', { class: 'table-wrap' },
      h('table', { id: 'channel-table', class: 'data' },
        h('thead', {}, h('tr', {},
          h('th', {}, t('dashboard.channel')),
          h('th', {}, t('dashboard.source')),
          COLUMNS.map((c) => h('th', { class: 'num' }, t(`dashboard.col.${c}`))))),
        h('tbody', {}, channels.length
          ? channels.map((ch) => h('tr', { 'data-channel': ch.id },
            h('th', { scope: 'row' }, ch.id),
            h('td', { 'data-col': 'listening' }, listening(ch.listening)),
            COLUMNS.map((c) => cell(ch.id, c, ch[c]))))
          : h('tr', {}, h('td', { colspan: COLUMNS.length + 2, class: 'muted empty' }, t('dashboard.noChannels')))),
        h('tfoot', {}, h('tr', { 'data-total': '' },
          h('th', { scope: 'row' }, t('dashboard.total')),
          h('td', {}),
          COLUMNS.map((c) => cell(null, c, (data.total || {})[c]))))));
  }

  function queues() {
    const rows = data.queues || [];
    if (!rows.length) return h('div', { id: 'queues' }, h('p', { class: 'muted empty' }, t('dashboard.noQueues')));
    return h('div', { id: 'queues', class: 'table-wrap' },
      h('table', { class: 'data' },
        h('thead', {}, h('tr', {},
          h('th', {}, t('dashboard.channel')),
          h('th', {}, t('dashboard.destination')),
          h('th', { class: 'num' }, t('dashboard.col.queued')),
          h('th', {}, t('dashboard.oldest')))),
        h('tbody', {}, rows.map((q) => h('tr', { 'data-destination': q.destination },
          h('td', {}, q.channel_id),
          h('td', {}, messagesLink(q.destination, { channel: q.channel_id, destination: q.destination, status: 'queued' })),
          h('td', { class: 'num' }, count(q.queued)),
          h('td', {}, q.oldest_at ? [timeEl(q.oldest_at), h('span', { class: 'muted' }, ` (${age(q.oldest_at)})`)] : NONE))))));
  }

  function errors() {
    const errs = data.errors_last_hour || { count: 0, recent: [] };
    const recent = errs.recent || [];
    return h('div', { id: 'errors-last-hour' },
      h('p', { class: ['big-number', errs.count ? 'bad' : 'good'] }, count(errs.count),
        h('span', { class: 'muted' }, ` ${t('dashboard.errorsCount')}`)),
      recent.length
        ? h('div', { class: 'table-wrap' }, h('table', { class: 'data' },
          h('thead', {}, h('tr', {},
            h('th', {}, t('dashboard.time')),
            h('th', {}, t('dashboard.channel')),
            h('th', {}, t('dashboard.type')),
            h('th', {}, t('dashboard.error')))),
          h('tbody', {}, recent.map((e) => h('tr', { 'data-message-id': String(e.id) },
            h('td', { class: 'nowrap' }, readsMessages
              ? h('a', { class: 'message-link', href: messageHref(e.id) }, timeEl(e.received_at))
              : timeEl(e.received_at)),
            h('td', {}, e.channel_id),
            h('td', { class: 'mono' }, e.message_type || NONE),
            h('td', { class: 'error-text', title: e.error || '' }, e.error || NONE))))))
        : null);
  }

  function render(target) {
    root = target;
    const generated = parseTime(data.generated_at);
    fill(root, h('section', { id: 'dashboard', class: 'page' },
      h('div', { class: 'page-head' },
        h('h1', {}, t('dashboard.title')),
        h('p', { class: 'muted' }, t('dashboard.updated', {
          time: generated ? localText(generated) : NONE, seconds: REFRESH_MS / 1000,
        }))),
      h('div', { class: 'dashboard-grid' },
        h('section', { class: 'card wide' }, h('h2', {}, t('dashboard.channels', { hours: data.hours })), channelTable()),
        h('section', { class: 'card' }, h('h2', {}, t('dashboard.errors')), errors()),
        h('section', { class: 'card wide' }, h('h2', {}, t('chart.title')),
          hourlyChart(data.series || { buckets: 0, channels: {} }, data.bucket_seconds || 3600)),
        h('section', { class: 'card' }, h('h2', {}, t('dashboard.queues')), queues()))));
    if (!timer && !stopped) timer = setInterval(refresh, REFRESH_MS);
  }

  function stop() {
    stopped = true;
    if (timer) clearInterval(timer);
    timer = null;
  }

  return { title: 'dashboard.title', load, render, stop };
}
