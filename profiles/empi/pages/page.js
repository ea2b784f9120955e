/**
 * The master patient index for a hospital's data steward.
 *
 * #/empi?q=<text>: the review queue (GET /api/v1/empi/reviews: uncertain matches, best score first,
 * the incoming record beside the candidate person's records) with Link / Not the same person for
 * stewards, and a search of the index's records (GET /api/v1/empi/records?q=) by patient id,
 * domain:value, national ID or the start of a name.
 * #/empi/person/<domain>/<value>: the person of that record (GET /api/v1/empi/persons): every
 * linked record (unlink per record), the history, and the forms to link a record to another person
 * or merge this person into another.
 *
 * Every change asks for confirmation first, shows its result, and loads the page's data again. The
 * API records every read in the audit trail; national ID and phone numbers come masked.
 */

import { request } from '../../api.js';
import { h, fill } from '../../dom.js';
import { NONE, timeEl } from '../../format.js';
import { has, t } from '../../i18n.js';

const PAGE_SIZE = 50;
const API = '/api/v1/empi';

const recordKey = (r) => `${r.domain}:${r.value}`;

export function personHref(domain, value) {
  return `#/empi/person/${encodeURIComponent(domain)}/${encodeURIComponent(value)}`;
}

function sexText(code) {
  if (code === null || code === undefined || code === '') return NONE;
  return has(`empi.sex.${code}`) ? t(`empi.sex.${code}`) : String(code);
}

function statusBadge(status) {
  const known = has(`empi.status.${status}`);
  return h('span', { class: ['badge', status === 'active' ? 'badge-sent' : 'badge-filtered'] },
    known ? t(`empi.status.${status}`) : String(status));
}

function scoreText(score) {
  return typeof score === 'number' ? `${Math.round(score * 100)}%` : NONE;
}

function fieldScores(scores) {
  const entries = Object.entries(scores || {});
  if (!entries.length) return null;
  return h('ul', { class: 'empi-scores' }, entries.map(([field, value]) => h('li', {
    class: value >= 1 ? 'empi-agree' : 'empi-differs',
  }, `${has(`empi.field.${field}`) ? t(`empi.field.${field}`) : field} ${Number(value).toFixed(2)}`)));
}

/** One record's identity: name, sex, birth date, national ID (masked), domain:value. */
function identity(r, { compare = null, link = true } = {}) {
  const differs = (key) => (compare && compare[key] && r[key] && compare[key] !== r[key] ? 'empi-differs' : null);
  return h('div', { class: 'empi-identity', 'data-domain': r.domain, 'data-value': r.value },
    h('div', { class: ['empi-name', differs('name')] }, r.name || NONE),
    h('div', { class: 'small' },
      h('span', { class: differs('sex') }, sexText(r.sex)), ' · ',
      h('span', { class: ['mono', differs('birth_date')] }, r.birth_date || NONE)),
    h('div', { class: 'small' }, h('span', { class: 'muted' }, `${t('empi.col.nationalId')} `),
      h('span', { class: 'mono' }, r.national_id || NONE)),
    h('div', { class: 'small mono' }, link && r.status !== 'merged'
      ? h('a', { href: personHref(r.domain, r.value), class: 'empi-record-link' }, recordKey(r))
      : recordKey(r)));
}

export function create(ctx) {
  const [view, domain, value] = ctx.params;
  return view === 'person' && domain && value ? personPage(ctx, domain, value) : queuePage(ctx);
}

// -- shared: confirmation and results -------------------------------------------------------------

function changes(ctx, state, reloadData) {
  let root = null;

  /** Asks `question`; on yes runs `act` (a POST), shows what `done(answer)` says, loads again. */
  function confirmThen(question, okLabel, act, done) {
    const old = document.getElementById('empi-confirm');
    if (old) old.remove();
    const ok = h('button', { id: 'empi-confirm-ok', type: 'button', class: 'warn' }, okLabel);
    const dialog = h('dialog', { id: 'empi-confirm', 'aria-labelledby': 'empi-confirm-title' },
      h('h2', { id: 'empi-confirm-title' }, t('empi.confirm.title')),
      h('p', { id: 'empi-confirm-text' }, question),
      h('div', { class: 'actions' },
        h('button', { id: 'empi-confirm-cancel', type: 'button', on: { click: () => dialog.close() } }, t('common.cancel')),
        ok));
    ok.addEventListener('click', async () => {
      ok.disabled = true;
      dialog.close();
      try {
        const answer = await act();
        state.notice = done(answer);
      } catch {
        state.notice = null; // the banner says why
        return;
      }
      try {
        await reloadData();
      } finally {
        if (root) page.render(root);
      }
    });
    dialog.addEventListener('close', () => dialog.remove());
    (root || document.body).append(dialog);
    dialog.showModal();
  }

  function notice() {
    return h('div', { id: 'empi-result', class: 'result', 'aria-live': 'polite' },
      state.notice ? h('p', { class: 'notice' }, state.notice) : null);
  }

  const page = { confirmThen, notice, setRoot: (r) => { root = r; }, render: null };
  return page;
}

// -- #/empi: the review queue and the search ------------------------------------------------------

function queuePage(ctx) {
  const steward = ctx.may('steward');
  const q = (ctx.query.get('q') || '').trim();
  const state = { reviews: [], open: 0, next: null, loaded: false, found: [], foundNext: null, searched: false, notice: null };
  let root = null;

  async function loadReviews() {
    const answer = await request('GET', `${API}/reviews`, { params: { limit: PAGE_SIZE } });
    state.reviews = answer.reviews || [];
    state.open = answer.open || 0;
    state.next = answer.next ?? null;
    state.loaded = true;
  }

  async function loadSearch() {
    if (!q) return;
    const answer = await request('GET', `${API}/records`, { params: { q, limit: PAGE_SIZE } });
    state.found = answer.records || [];
    state.foundNext = answer.next_before ?? null;
    state.searched = true;
  }

  async function load() {
    const [reviews] = await Promise.allSettled([loadReviews(), loadSearch()]);
    if (reviews.status === 'rejected') throw reviews.reason;
  }

  const act = changes(ctx, state, load);
  act.render = (r) => render(r);

  // -- reviews -----------------------------------------------------------------------------------
  function decide(review, link) {
    const incoming = recordKey(review.record);
    const candidate = review.candidates.length ? review.candidates.map(recordKey).join(', ') : t('empi.review.noCandidate');
    act.confirmThen(
      t(link ? 'empi.confirm.linkReview' : 'empi.confirm.separate', { record: incoming, candidate }),
      link ? t('empi.review.link') : t('empi.review.separate'),
      () => request('POST', `${API}/reviews/${encodeURIComponent(review.id)}`, { body: { decision: link ? 'link' : 'separate' } }),
      () => t(link ? 'empi.done.linkReview' : 'empi.done.separate', { id: review.id, record: incoming, candidate }),
    );
  }

  function reviewRow(review) {
    const candidates = review.candidates || [];
    return h('tr', { 'data-review-id': String(review.id), 'data-record': recordKey(review.record) },
      h('td', { class: 'num empi-score' },
        h('strong', {}, scoreText(review.score)), fieldScores(review.scores)),
      h('td', { class: 'empi-incoming' }, identity(review.record)),
      h('td', { class: 'empi-candidates' }, h('div', { class: 'empi-stack' }, candidates.length
        ? candidates.map((c) => identity(c, { compare: review.record }))
        : h('span', { class: 'muted' }, t('empi.review.noCandidate')))),
      h('td', { class: 'nowrap' }, timeEl(review.created_at)),
      steward
        ? h('td', {}, h('div', { class: 'empi-actions' },
          h('button', { type: 'button', class: 'primary empi-link', on: { click: () => decide(review, true) } }, t('empi.review.link')),
          h('button', { type: 'button', class: 'warn empi-separate', on: { click: () => decide(review, false) } }, t('empi.review.separate'))))
        : null);
  }

  async function moreReviews(button) {
    button.disabled = true;
    try {
      const last = state.next;
      const answer = await request('GET', `${API}/reviews`, { params: { limit: PAGE_SIZE, after: last } });
      state.reviews.push(...(answer.reviews || []));
      state.next = answer.next ?? null;
      render(root);
    } catch {
      button.disabled = false;
    }
  }

  function reviews() {
    const columns = ['score', 'incoming', 'candidate', 'opened', ...(steward ? ['decision'] : [])];
    return h('section', { class: 'card', id: 'empi-queue' },
      h('h2', {}, t('empi.reviews.title'), ' ', h('span', { id: 'empi-open-count', class: 'badge badge-queued' }, String(state.open))),
      h('p', { class: 'muted small' }, t('empi.reviews.explain')),
      h('div', { class: 'table-wrap' },
        h('table', { id: 'empi-reviews', class: 'data' },
          h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, t(`empi.col.${c}`))))),
          h('tbody', {}, state.reviews.length
            ? state.reviews.map(reviewRow)
            : h('tr', { class: 'empty-row' }, h('td', { colspan: columns.length, class: 'muted empty' }, t('empi.reviews.none')))))),
      state.next !== null
        ? h('div', { class: 'below-table' }, h('button', {
          id: 'empi-reviews-more', type: 'button', on: { click: (e) => moreReviews(e.currentTarget) },
        }, t('empi.more')))
        : null);
  }

  // -- search ------------------------------------------------------------------------------------
  function submit(event) {
    event.preventDefault();
    const text = String(new FormData(event.currentTarget).get('q') || '').trim();
    const hash = text ? `#/empi?q=${encodeURIComponent(text)}` : '#/empi';
    if (hash === location.hash) ctx.reload();
    else location.hash = hash;
  }

  function restore(r) {
    act.confirmThen(
      t('empi.confirm.restore', { record: recordKey(r) }),
      t('empi.restore'),
      () => request('POST', `${API}/restore`, { body: { domain: r.domain, value: r.value } }),
      () => t('empi.done.restore', { record: recordKey(r) }),
    );
  }

  function foundRow(r) {
    return h('tr', { 'data-record-id': String(r.id), 'data-domain': r.domain, 'data-value': r.value },
      h('td', { class: 'mono nowrap' }, r.status === 'active'
        ? h('a', { href: personHref(r.domain, r.value), class: 'empi-record-link' }, recordKey(r))
        : recordKey(r)),
      h('td', {}, r.name || NONE),
      h('td', {}, sexText(r.sex)),
      h('td', { class: 'mono nowrap' }, r.birth_date || NONE),
      h('td', { class: 'mono' }, r.national_id || NONE),
      h('td', {}, statusBadge(r.status)),
      h('td', {}, steward && r.status === 'merged'
        ? h('button', { type: 'button', class: 'warn empi-restore', on: { click: () => restore(r) } }, t('empi.restore'))
        : null));
  }

  async function moreFound(button) {
    button.disabled = true;
    try {
      const answer = await request('GET', `${API}/records`, { params: { q, limit: PAGE_SIZE, before: state.foundNext } });
      state.found.push(...(answer.records || []));
      state.foundNext = answer.next_before ?? null;
      render(root);
    } catch {
      button.disabled = false;
    }
  }

  function search() {
    const columns = ['record', 'name', 'sex', 'birthDate', 'nationalId', 'status', 'action'];
    return h('section', { class: 'card', id: 'empi-find' },
      h('h2', {}, t('empi.search.title')),
      h('form', { id: 'empi-search-form', class: 'filters', role: 'search', on: { submit } },
        h('div', { class: 'field empi-wide' },
          h('label', { for: 'empi-search' }, t('empi.search.label')),
          h('input', {
            id: 'empi-search', name: 'q', type: 'search', value: q, maxlength: 200, autocomplete: 'off',
            placeholder: t('empi.search.hint'),
          })),
        h('div', { class: 'field actions' },
          h('button', { id: 'empi-search-submit', type: 'submit', class: 'primary' }, t('empi.search.submit')))),
      q && state.searched
        ? [
          h('p', { class: 'muted small' }, t(state.foundNext !== null ? 'empi.search.countMore' : 'empi.search.count', { n: state.found.length })),
          h('div', { class: 'table-wrap' },
            h('table', { id: 'empi-search-results', class: 'data' },
              h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, t(`empi.col.${c}`))))),
              h('tbody', {}, state.found.length
                ? state.found.map(foundRow)
                : h('tr', { class: 'empty-row' }, h('td', { colspan: columns.length, class: 'muted empty' }, t('empi.search.none')))))),
          state.foundNext !== null
            ? h('div', { class: 'below-table' }, h('button', {
              id: 'empi-search-more', type: 'button', on: { click: (e) => moreFound(e.currentTarget) },
            }, t('empi.more')))
            : null,
        ]
        : null);
  }

  function render(target) {
    root = target;
    act.setRoot(target);
    fill(root, h('section', { id: 'empi-page', class: 'page' },
      h('div', { class: 'page-head' }, h('h1', {}, t('empi.title'))),
      h('p', { class: 'audit-notice' }, t('empi.auditNotice')),
      act.notice(),
      search(),
      reviews()));
  }

  return { title: 'empi.title', load, render };
}

// -- #/empi/person/<domain>/<value> ---------------------------------------------------------------

function personPage(ctx, domain, value) {
  const steward = ctx.may('steward');
  const state = { view: null, notice: null };
  const here = `${domain}:${value}`;
  let root = null;

  async function load() {
    state.view = await request('GET', `${API}/persons`, { params: { domain, value } });
  }

  const act = changes(ctx, state, load);
  act.render = (r) => render(r);

  function active() {
    return (state.view.records || []).filter((r) => r.status === 'active');
  }

  function unlink(r) {
    act.confirmThen(
      t('empi.confirm.unlink', { record: recordKey(r) }),
      t('empi.unlink'),
      () => request('POST', `${API}/unlink`, { body: { domain: r.domain, value: r.value } }),
      () => t('empi.done.unlink', { record: recordKey(r) }),
    );
  }

  function recordRow(r, alone) {
    return h('tr', { 'data-record-id': String(r.id), 'data-domain': r.domain, 'data-value': r.value, class: recordKey(r) === here ? 'empi-here' : null },
      h('td', { class: 'mono nowrap' }, recordKey(r)),
      h('td', {}, r.name || NONE),
      h('td', {}, sexText(r.sex)),
      h('td', { class: 'mono nowrap' }, r.birth_date || NONE),
      h('td', { class: 'mono' }, r.national_id || NONE),
      h('td', { class: 'mono' }, r.phone || NONE),
      h('td', {}, r.city || NONE),
      h('td', {}, statusBadge(r.status)),
      steward
        ? h('td', {}, r.status === 'active'
          ? h('button', {
            type: 'button', class: 'warn empi-unlink', disabled: alone, title: alone ? t('empi.unlink.alone') : null,
            on: { click: () => unlink(r) },
          }, t('empi.unlink'))
          : null)
        : null);
  }

  function recordsTable() {
    const all = state.view.records || [];
    const alone = active().length < 2;
    const columns = ['record', 'name', 'sex', 'birthDate', 'nationalId', 'phone', 'city', 'status', ...(steward ? ['action'] : [])];
    return h('section', { class: 'card' },
      h('h2', {}, t('empi.person.records', { n: all.length })),
      h('div', { class: 'table-wrap' },
        h('table', { id: 'empi-records', class: 'data' },
          h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, t(`empi.col.${c}`))))),
          h('tbody', {}, all.map((r) => recordRow(r, alone))))));
  }

  function why(text) {
    const key = `empi.why.${String(text).replace(/[^\w-]+/g, '-')}`;
    return has(key) ? t(key) : String(text);
  }

  function detailText(detail) {
    if (detail === null || detail === undefined) return '';
    if (typeof detail === 'string') return why(detail);
    if (detail.why) return why(detail.why);
    if (detail.scores) {
      return Object.entries(detail.scores)
        .map(([f, v]) => `${has(`empi.field.${f}`) ? t(`empi.field.${f}`) : f} ${Number(v).toFixed(2)}`).join(' · ');
    }
    return '';
  }

  function historyTable() {
    const events = state.view.history || [];
    const columns = ['at', 'event', 'record', 'score', 'detail', 'actor'];
    return h('section', { class: 'card' },
      h('h2', {}, t('empi.person.history')),
      h('div', { class: 'table-wrap empi-history-wrap' },
        h('table', { id: 'empi-history', class: 'data small' },
          h('thead', {}, h('tr', {}, columns.map((c) => h('th', {}, t(`empi.col.${c}`))))),
          h('tbody', {}, events.length
            ? events.map((e) => h('tr', { 'data-event-id': String(e.id), 'data-kind': e.kind },
              h('td', { class: 'nowrap' }, timeEl(e.at)),
              h('td', {}, has(`empi.kind.${e.kind}`) ? t(`empi.kind.${e.kind}`) : e.kind),
              h('td', { class: 'mono' }, e.record ? recordKey(e.record) : NONE),
              h('td', { class: 'num' }, typeof e.score === 'number' ? scoreText(e.score) : ''),
              h('td', {}, detailText(e.detail)),
              h('td', {}, e.actor)))
            : h('tr', {}, h('td', { colspan: columns.length, class: 'muted empty' }, t('empi.person.noHistory')))))));
  }

  function domainSelect(id) {
    return h('select', { id, name: 'to_domain', required: true },
      (state.view.domains || []).map((d) => h('option', { value: d.id, title: d.description || null }, d.description ? `${d.id} (${d.description})` : d.id)));
  }

  function target(form) {
    const data = new FormData(form);
    return { to_domain: String(data.get('to_domain') || ''), to_value: String(data.get('to_value') || '').trim() };
  }

  function linkForm() {
    const mine = active();
    const submit = (event) => {
      event.preventDefault();
      const form = event.currentTarget;
      const chosen = String(new FormData(form).get('record') || here);
      const [d, ...rest] = chosen.split(':');
      const to = target(form);
      if (!to.to_value) return;
      const targetText = `${to.to_domain}:${to.to_value}`;
      act.confirmThen(
        t('empi.confirm.link', { record: chosen, target: targetText }),
        t('empi.link.submit'),
        () => request('POST', `${API}/link`, { body: { domain: d, value: rest.join(':'), ...to } }),
        () => t('empi.done.link', { record: chosen, target: targetText }),
      );
    };
    return h('form', { id: 'empi-link-form', class: 'card empi-form', on: { submit } },
      h('h2', {}, t('empi.link.title')),
      h('p', { class: 'muted small' }, t('empi.link.explain')),
      h('div', { class: 'filters' },
        h('div', { class: 'field' }, h('label', { for: 'empi-link-record' }, t('empi.link.record')),
          h('select', { id: 'empi-link-record', name: 'record' }, mine.map((r) => h('option', {
            value: recordKey(r), selected: recordKey(r) === here,
          }, `${recordKey(r)} ${r.name || ''}`)))),
        h('div', { class: 'field' }, h('label', { for: 'empi-link-domain' }, t('empi.form.domain')), domainSelect('empi-link-domain')),
        h('div', { class: 'field' }, h('label', { for: 'empi-link-value' }, t('empi.form.value')),
          h('input', { id: 'empi-link-value', name: 'to_value', required: true, maxlength: 100, autocomplete: 'off' })),
        h('div', { class: 'field actions' },
          h('button', { id: 'empi-link-submit', type: 'submit', class: 'primary' }, t('empi.link.submit')))));
  }

  function mergeForm() {
    const submit = (event) => {
      event.preventDefault();
      const to = target(event.currentTarget);
      if (!to.to_value) return;
      const targetText = `${to.to_domain}:${to.to_value}`;
      act.confirmThen(
        t('empi.confirm.merge', { n: active().length, target: targetText }),
        t('empi.merge.submit'),
        () => request('POST', `${API}/merge`, { body: { domain, value, ...to } }),
        (answer) => t('empi.done.merge', { n: (answer.moved || []).length, target: targetText }),
      );
    };
    return h('form', { id: 'empi-merge-form', class: 'card empi-form', on: { submit } },
      h('h2', {}, t('empi.merge.title')),
      h('p', { class: 'muted small' }, t('empi.merge.explain', { n: active().length })),
      h('div', { class: 'filters' },
        h('div', { class: 'field' }, h('label', { for: 'empi-merge-domain' }, t('empi.form.domain')), domainSelect('empi-merge-domain')),
        h('div', { class: 'field' }, h('label', { for: 'empi-merge-value' }, t('empi.form.value')),
          h('input', { id: 'empi-merge-value', name: 'to_value', required: true, maxlength: 100, autocomplete: 'off' })),
        h('div', { class: 'field actions' },
          h('button', { id: 'empi-merge-submit', type: 'submit', class: 'warn' }, t('empi.merge.submit')))));
  }

  function render(target) {
    root = target;
    act.setRoot(target);
    const p = state.view.person;
    fill(root, h('article', { id: 'empi-person', class: 'page', 'data-person-id': String(p.id) },
      h('div', { class: 'page-head' },
        h('h1', {}, t('empi.person.title', { id: p.id }), ' ', statusBadge(p.status)),
        h('a', { href: '#/empi', class: 'muted' }, t('empi.back'))),
      h('p', { class: 'audit-notice' }, t('empi.auditNotice')),
      act.notice(),
      h('section', { class: 'card' }, h('dl', { class: 'meta' },
        h('dt', {}, t('empi.person.reached')), h('dd', { class: 'mono' }, here),
        h('dt', {}, t('empi.col.nationalId')), h('dd', { id: 'empi-person-national-id', class: 'mono' }, p.national_id || NONE),
        h('dt', {}, t('empi.person.created')), h('dd', {}, timeEl(p.created_at)),
        h('dt', {}, t('empi.person.updated')), h('dd', {}, timeEl(p.updated_at)))),
      recordsTable(),
      steward ? h('div', { class: 'empi-forms' }, linkForm(), mergeForm()) : null,
      historyTable()));
  }

  return { title: 'empi.person.pageTitle', load, render };
}
