/**
 * #/documents?patient_id=&domain=&status=...: a patient's XDS documents (GET /api/v1/documents), as the
 * registry finds them through the EMPI (every id of the person), newest first; #documents-more fetches
 * older ones. #/documents/<entryUUID>: one DocumentEntry's metadata and associations; #documents-show
 * fetches the document from the repository here and shows its text (CDA XML as text, never as HTML).
 * Every search, entry and document shown is recorded in the audit trail by the API.
 */

import { request } from '../../api.js';
import { h, fill } from '../../dom.js';
import { pagedTable } from '../../paged.js';
import { NONE, count, timeEl } from '../../format.js';
import { t } from '../../i18n.js';

const FILTERS = ['patient_id', 'domain', 'status', 'class_code', 'type_code', 'since', 'until'];
const TEXTS = ['class_code', 'type_code'];
const STATUSES = ['all', 'approved', 'deprecated'];
const PAGE_SIZE = 50;
const KNOWN_ASSOCIATIONS = ['RPLC', 'XFRM', 'APND', 'XFRM_RPLC', 'signs'];

const entryHref = (uuid) => `#/documents/${encodeURIComponent(uuid)}`;

/** An XDS time (ISO text of the precision the metadata gave): a date alone stays a date. */
function xdsTime(iso) {
  if (!iso) return h('span', { class: 'muted' }, NONE);
  if (!String(iso).includes('T')) return h('time', { datetime: iso }, iso);
  return timeEl(iso);
}

function statusBadge(status) {
  const approved = status === 'Approved';
  return h('span', {
    class: ['badge', approved ? 'badge-sent' : 'badge-filtered', 'documents-status'], 'data-status': status,
  }, approved ? t('documents.status.approved') : status === 'Deprecated' ? t('documents.status.deprecated') : String(status));
}

/** A code as its display name, the code itself in the tooltip (and shown when there is no name). */
function code(c) {
  if (!c) return h('span', { class: 'muted' }, NONE);
  const title = `${c.code}${c.scheme ? ` (${c.scheme})` : ''}`;
  return h('span', { class: 'documents-code', title }, c.display || c.code);
}

/** A code as its display name and its code (its coding scheme in the tooltip). */
function codeFull(c) {
  if (!c) return h('span', { class: 'muted' }, NONE);
  const title = c.scheme ? `${c.code}^^${c.scheme}` : c.code;
  if (!c.display || c.display === c.code) return h('span', { class: 'mono', title }, c.code);
  return h('span', { title }, c.display, ' ', h('span', { class: 'muted mono small' }, c.code));
}

function codes(list) {
  if (!list || !list.length) return h('span', { class: 'muted' }, NONE);
  return list.map((c, n) => [n ? ', ' : '', codeFull(c)]);
}

function filtersFrom(query) {
  const out = {};
  for (const name of FILTERS) {
    const value = (query.get(name) || '').trim();
    if (value) out[name] = value;
  }
  return out;
}

// -- #/documents -----------------------------------------------------------------------------------
function listPage(ctx) {
  const filters = filtersFrom(ctx.query);
  const state = { domains: [], defaultDomain: 'national-id', patient: null, rows: [], next: null, searched: false };
  let summary = null;

  const search = (before) => request('GET', '/api/v1/documents', { params: { ...filters, limit: PAGE_SIZE, before } });

  async function load() {
    const asked = filters.patient_id ? search(null) : Promise.resolve(null);
    const [domains, found] = await Promise.allSettled([request('GET', '/api/v1/documents/domains', { quiet: true }), asked]);
    if (domains.status === 'fulfilled') {
      state.domains = domains.value.domains || [];
      state.defaultDomain = domains.value.default || state.defaultDomain;
    }
    if (found.status === 'fulfilled' && found.value) {
      state.patient = found.value.patient;
      state.rows = found.value.documents || [];
      state.next = found.value.next_before ?? null;
      state.searched = true;
    }
  }

  function submit(event) {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const chosen = new URLSearchParams();
    for (const name of FILTERS) {
      const value = String(data.get(name) || '').trim();
      if (value && !(name === 'status' && value === 'all')) chosen.set(name, value);
    }
    // an affinity-domain id (ID^^^&OID&ISO) names its domain itself
    if (/\^\^\^&/.test(chosen.get('patient_id') || '')) chosen.delete('domain');
    const text = chosen.toString();
    const hash = `#/documents${text ? `?${text}` : ''}`;
    if (hash === location.hash) ctx.reload();
    else location.hash = hash;
  }

  function field(name, control, wide = false) {
    return h('div', { class: ['field', wide ? 'documents-wide' : null] },
      h('label', { for: `documents-${name}` }, t(`documents.filter.${name}`)), control);
  }

  function domainSelect() {
    const chosen = filters.domain || state.defaultDomain;
    const listed = state.domains.map((d) => d.id);
    if (filters.domain && !listed.includes(filters.domain)) listed.push(filters.domain);
    const about = Object.fromEntries(state.domains.map((d) => [d.id, d]));
    if (!listed.length) {
      return h('input', { id: 'documents-domain', name: 'domain', value: filters.domain || '', maxlength: 200, autocomplete: 'off', placeholder: state.defaultDomain });
    }
    return h('select', { id: 'documents-domain', name: 'domain' },
      listed.map((id) => {
        const d = about[id];
        const label = id === 'national-id' ? t('documents.domain.national') : d && d.description ? `${d.description}` : id;
        return h('option', { value: id, selected: id === chosen, title: d ? `${d.namespace} ${d.oid}` : null }, label);
      }));
  }

  function form() {
    return h('form', { id: 'documents-form', class: 'filters', on: { submit } },
      field('patient_id', h('input', {
        id: 'documents-patient_id', name: 'patient_id', value: filters.patient_id || '', maxlength: 200,
        autocomplete: 'off', required: true, placeholder: t('documents.filter.patient_id.hint'),
      }), true),
      field('domain', domainSelect()),
      field('status', h('select', { id: 'documents-status', name: 'status' },
        STATUSES.map((s) => h('option', { value: s, selected: s === (filters.status || 'all') }, t(`documents.filter.status.${s}`))))),
      field('since', h('input', { id: 'documents-since', name: 'since', type: 'date', value: filters.since || '' })),
      field('until', h('input', { id: 'documents-until', name: 'until', type: 'date', value: filters.until || '' })),
      TEXTS.map((name) => field(name, h('input', {
        id: `documents-${name}`, name, value: filters[name] || '', maxlength: 200, autocomplete: 'off',
        placeholder: t(`documents.filter.${name}.hint`),
      }))),
      h('div', { class: 'field actions' },
        h('button', { id: 'documents-submit', type: 'submit', class: 'primary' }, t('documents.search')),
        h('a', { href: '#/documents', class: 'button ghost' }, t('documents.clear'))));
  }

  function period(d) {
    if (!d.service_start_time && !d.service_stop_time) return h('span', { class: 'muted' }, NONE);
    return h('span', { class: 'nowrap' }, xdsTime(d.service_start_time), ' – ', xdsTime(d.service_stop_time));
  }

  function repository(d) {
    return d.held_here
      ? h('span', { class: 'good', title: d.repository_unique_id }, t('documents.heldHere'))
      : h('span', { class: 'muted', title: d.repository_unique_id || '' }, t('documents.elsewhere'));
  }

  function row(d) {
    return h('tr', { 'data-entry-uuid': d.entry_uuid, 'data-status': d.status },
      h('td', { class: 'nowrap' }, xdsTime(d.creation_time)),
      h('td', {}, h('a', { class: 'documents-link', href: entryHref(d.entry_uuid) }, d.title || d.unique_id)),
      h('td', {}, code(d.class_code)),
      h('td', {}, code(d.type_code)),
      h('td', {}, statusBadge(d.status)),
      h('td', {}, d.author_institution || h('span', { class: 'muted' }, NONE)),
      h('td', {}, d.author_person || h('span', { class: 'muted' }, NONE)),
      h('td', {}, period(d)),
      h('td', { class: 'num nowrap', title: d.mime_type }, d.size !== null && d.size !== undefined ? count(d.size) : NONE),
      h('td', {}, repository(d)));
  }

  function emptyRow() {
    return h('tr', { class: 'empty-row' }, h('td', { colspan: 10, class: 'muted empty' },
      state.searched ? t('documents.none') : t('documents.ask')));
  }

  function summaryText() {
    if (!state.searched) return '';
    const key = state.next !== null ? 'documents.countMore' : 'documents.count';
    return t(key, { n: state.rows.length });
  }

  function patientLine() {
    if (!state.patient) return null;
    const p = state.patient;
    return h('p', { id: 'documents-patient', class: ['notice', p.known ? null : 'documents-unknown'] },
      t('documents.patient'), ' ', h('span', { class: 'mono' }, p.patient_id), ' · ',
      p.known ? t('documents.known') : t('documents.unknown'));
  }

  function results() {
    const columns = ['created', 'title', 'class', 'type', 'status', 'institution', 'author', 'service', 'size', 'repository'];
    return pagedTable({
      id: 'documents-table',
      head: h('thead', {}, h('tr', {}, columns.map((c) => h('th', { class: c === 'size' ? 'num' : null }, t(`documents.col.${c}`))))),
      state, row, emptyRow,
      fetchPage: async (next) => {
        const page = await search(next);
        return { rows: page.documents || [], next: page.next_before ?? null };
      },
      moreId: 'documents-more',
      moreLabel: t('documents.more'),
      changed: () => { summary.textContent = summaryText(); },
    });
  }

  function render(root) {
    summary = h('span', { class: 'muted' }, summaryText());
    fill(root, h('section', { id: 'documents-page', class: 'page' },
      h('div', { class: 'page-head' }, h('h1', {}, t('documents.title'))),
      form(),
      patientLine(),
      h('div', { class: 'toolbar' }, summary, h('span', { class: 'spacer' }),
        h('span', { class: 'muted small' }, t('documents.audited'))),
      results()));
  }

  return { title: 'documents.title', load, render };
}

// -- #/documents/<entryUUID> -----------------------------------------------------------------------
function entryPage(ctx) {
  const uuid = ctx.params[0];
  const state = { entry: null, content: null, busy: false };
  let root = null;
  let downloadUrl = null;

  async function load() {
    state.entry = await request('GET', `/api/v1/documents/${encodeURIComponent(uuid)}`);
  }

  function pair(key, ...value) {
    const shown = value.flat(Infinity).filter((v) => v !== null && v !== undefined && v !== '');
    return [h('dt', {}, t(key)), h('dd', {}, shown.length ? shown : h('span', { class: 'muted' }, NONE))];
  }

  const mono = (text) => (text ? h('span', { class: 'mono' }, String(text)) : '');

  function authors(list) {
    if (!list || !list.length) return '';
    return h('ul', { class: 'compact' }, list.map((a) => h('li', {},
      [a.person_name, ...(a.institution_names || [])].filter(Boolean).join(' · '),
      (a.roles || []).length ? h('span', { class: 'muted' }, ` (${a.roles.join(', ')})`) : null)));
  }

  function associationLabel(a) {
    const known = KNOWN_ASSOCIATIONS.includes(a.type);
    return known ? t(`documents.assoc.${a.type}.${a.direction}`) : `${a.type} (${a.direction})`;
  }

  function associations(list) {
    if (!list || !list.length) return h('p', { class: 'muted' }, t('documents.noAssociations'));
    return h('ul', { id: 'documents-associations', class: 'compact' }, list.map((a) => h('li', { 'data-association': a.type, 'data-direction': a.direction },
      h('span', { class: 'documents-assoc' }, associationLabel(a)), ' ',
      h('a', { href: entryHref(a.other.entry_uuid) }, a.other.title || a.other.unique_id || a.other.entry_uuid), ' ',
      a.other.status ? statusBadge(a.other.status) : null, ' ',
      a.other.creation_time ? h('span', { class: 'muted small' }, xdsTime(a.other.creation_time)) : null)));
  }

  function submissionSet(ss) {
    if (!ss) return '';
    return h('span', {}, mono(ss.unique_id), ' · ', xdsTime(ss.submission_time), ' · ',
      h('span', { class: 'muted' }, t('documents.meta.source')), ' ', mono(ss.source_id));
  }

  function folderList(list) {
    if (!list || !list.length) return '';
    return list.map((f, n) => [n ? ', ' : '', h('span', { title: f.unique_id }, f.title || f.unique_id)]);
  }

  function metadata(e) {
    return h('dl', { id: 'documents-meta', class: 'meta' },
      pair('documents.meta.title', e.title),
      pair('documents.meta.status', statusBadge(e.status)),
      pair('documents.meta.entryUuid', mono(e.entry_uuid)),
      pair('documents.meta.uniqueId', mono(e.unique_id)),
      pair('documents.meta.patient', mono(e.patient_id)),
      pair('documents.meta.sourcePatient', mono(e.source_patient_id)),
      pair('documents.meta.classCode', codeFull(e.class_code)),
      pair('documents.meta.typeCode', codeFull(e.type_code)),
      pair('documents.meta.formatCode', codeFull(e.format_code)),
      pair('documents.meta.facilityType', codeFull(e.healthcare_facility_type)),
      pair('documents.meta.practiceSetting', codeFull(e.practice_setting)),
      pair('documents.meta.confidentiality', codes(e.confidentiality)),
      pair('documents.meta.eventCodes', e.event_codes && e.event_codes.length ? codes(e.event_codes) : ''),
      pair('documents.meta.created', xdsTime(e.creation_time)),
      pair('documents.meta.serviceStart', e.service_start_time ? xdsTime(e.service_start_time) : ''),
      pair('documents.meta.serviceStop', e.service_stop_time ? xdsTime(e.service_stop_time) : ''),
      pair('documents.meta.authors', authors(e.authors)),
      pair('documents.meta.legalAuthenticator', e.legal_authenticator),
      pair('documents.meta.language', e.language_code),
      pair('documents.meta.mimeType', mono(e.mime_type)),
      pair('documents.meta.size', e.size !== null && e.size !== undefined ? t('documents.bytes', { n: count(e.size) }) : ''),
      pair('documents.meta.hash', mono(e.hash)),
      pair('documents.meta.repository', mono(e.repository_unique_id), ' ',
        e.held_here ? h('span', { class: 'good' }, t('documents.heldHere')) : h('span', { class: 'muted' }, t('documents.elsewhere'))),
      pair('documents.meta.version', e.version !== undefined ? `${e.version} · ${e.object_type || ''}` : ''),
      pair('documents.meta.submissionSet', submissionSet(e.submission_set)),
      pair('documents.meta.folders', folderList(e.folders)),
      pair('documents.meta.referenceIds', (e.reference_ids || []).join(', ')),
      pair('documents.meta.comments', e.comments),
      pair('documents.meta.registered', e.registered_at ? timeEl(e.registered_at) : ''));
  }

  function bytesOf(b64) {
    const raw = atob(b64 || '');
    const out = new Uint8Array(raw.length);
    for (let i = 0; i < raw.length; i += 1) out[i] = raw.charCodeAt(i);
    return out;
  }

  function contentBox() {
    const box = h('div', { id: 'documents-content-box' });
    const c = state.content;
    if (!c) return box;
    if (downloadUrl) URL.revokeObjectURL(downloadUrl);
    // octet-stream whatever the document is: the link downloads it, never opens it as a page
    downloadUrl = URL.createObjectURL(new Blob([bytesOf(c.base64)], { type: 'application/octet-stream' }));
    box.append(
      h('p', { class: 'muted small' },
        t('documents.contentInfo', { type: c.mime_type, n: count(c.size) }),
        c.encoding ? ` · ${c.encoding}` : '', ' · ',
        h('a', { id: 'documents-download', href: downloadUrl, download: `${c.unique_id}${/xml/.test(c.mime_type) ? '.xml' : ''}` }, t('documents.download'))),
      c.text !== null && c.text !== undefined
        ? h('pre', { id: 'documents-content', class: 'documents-content' }, c.text)
        : h('p', { id: 'documents-binary', class: 'notice' }, t('documents.binary')));
    return box;
  }

  async function show(button) {
    button.disabled = true;
    try {
      state.content = await request('GET', `/api/v1/documents/${encodeURIComponent(uuid)}/content`);
      root.querySelector('#documents-content-box').replaceWith(contentBox());
    } catch {
      // shown in the banner
    } finally {
      button.disabled = false;
    }
  }

  function documentCard(e) {
    const button = h('button', { id: 'documents-show', type: 'button', class: 'primary', disabled: !e.held_here }, t('documents.show'));
    button.addEventListener('click', () => show(button));
    return h('div', { class: 'card documents-document' },
      h('div', { class: 'toolbar' }, h('h2', {}, t('documents.document')), button,
        e.held_here ? h('span', { class: 'muted small' }, t('documents.showAudited')) : h('span', { class: 'muted small' }, t('documents.notHere'))),
      contentBox());
  }

  function render(target) {
    root = target;
    const e = state.entry;
    const back = `#/documents?${new URLSearchParams({ patient_id: e.patient_id }).toString()}`;
    fill(root, h('section', { id: 'documents-entry', class: 'page', 'data-entry-uuid': e.entry_uuid },
      h('div', { class: 'page-head' },
        h('h1', {}, e.title || e.unique_id, ' ', statusBadge(e.status)),
        h('a', { id: 'documents-back', href: back }, t('documents.back'))),
      h('div', { class: 'message-top' },
        h('div', { class: 'card' }, metadata(e)),
        h('div', { class: 'side' },
          h('div', { class: 'card' }, h('h2', {}, t('documents.associations')), associations(e.associations)),
          documentCard(e)))));
  }

  function stop() {
    if (downloadUrl) URL.revokeObjectURL(downloadUrl);
    downloadUrl = null;
  }

  return { title: 'documents.entryTitle', load, render, stop };
}

export function create(ctx) {
  return ctx.params.length ? entryPage(ctx) : listPage(ctx);
}
