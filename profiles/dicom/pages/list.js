/**
 * #/studies?<filters>: the archive's DICOM studies, newest received first (GET /api/v1/studies; the
 * search is recorded in the audit trail). The filters live in the hash, so a search is a link to share
 * and back/forward step through searches; #studies-more fetches older studies. Badges mark studies
 * whose patient the EMPI does not know yet and studies published in the XDS registry (XDS-I.b).
 */

import { queryString, request } from '../../api.js';
import { h, fill } from '../../dom.js';
import { pagedTable } from '../../paged.js';
import { NONE, timeEl } from '../../format.js';
import { t } from '../../i18n.js';
import { daText, nameEl, patientIdEl, rememberSearch, sexText, studyBadges, studyHref, studyWhen } from './common.js';

export const FILTERS = ['patient_id', 'name', 'accession', 'modality', 'since', 'until', 'source_ae', 'status', 'published'];
const TEXTS = ['patient_id', 'name', 'accession', 'source_ae'];
const DATES = ['since', 'until'];
const MODALITIES = ['CT', 'MR', 'CR', 'DX', 'MG', 'US', 'XA', 'RF', 'PT', 'NM', 'OT', 'SR', 'KO'];
const COLUMNS = ['date', 'patient', 'modalities', 'description', 'accession', 'counts', 'source', 'received', 'state'];
const PAGE_SIZE = 50;

function filtersFrom(query) {
  const out = {};
  for (const name of FILTERS) {
    const value = (query.get(name) || '').trim();
    if (value) out[name] = value;
  }
  return out;
}

/** A date filter (20261201 or 2026-12-01) as a date input's value. */
function dateInputValue(value) {
  const text = daText(String(value || '').replace(/-/g, ''));
  return /^\d{4}-\d{2}-\d{2}$/.test(text) ? text : '';
}

export function create(ctx) {
  const filters = filtersFrom(ctx.query);
  const state = { rows: [], next: null, searched: false };
  let summary = null;
  rememberSearch(`#/studies${queryString(filters)}`);

  const search = (before) => request('GET', '/api/v1/studies', { params: { ...filters, limit: PAGE_SIZE, before } });

  async function load() {
    const found = await search(null);
    state.rows = found.studies || [];
    state.next = found.next_before ?? null;
    state.searched = true;
  }

  // -- the form ----------------------------------------------------------------------------------
  function submit(event) {
    event.preventDefault();
    const data = new FormData(event.currentTarget);
    const chosen = {};
    for (const name of FILTERS) {
      const value = String(data.get(name) || '').trim();
      if (value) chosen[name] = value;
    }
    const hash = `#/studies${queryString(chosen)}`;
    if (hash === location.hash) ctx.reload();
    else location.hash = hash;
  }

  function field(name, control) {
    return h('div', { class: 'field' }, h('label', { for: `studies-${name}` }, t(`studies.filter.${name}`)), control);
  }

  function select(name, values) {
    return h('select', { id: `studies-${name}`, name },
      h('option', { value: '' }, t('studies.filter.any')),
      values.map((v) => h('option', { value: v, selected: v === filters[name] }, t(`studies.filter.${name}.${v}`))));
  }

  function form() {
    const textInput = (name) => h('input', {
      id: `studies-${name}`, name, value: filters[name] || '', maxlength: 200, autocomplete: 'off',
      placeholder: t(`studies.filter.${name}.hint`),
    });
    const dateInput = (name) => h('input', {
      id: `studies-${name}`, name, type: 'date', value: dateInputValue(filters[name]),
    });
    return h('form', { id: 'studies-form', class: 'filters', on: { submit } },
      TEXTS.slice(0, 3).map((name) => field(name, textInput(name))),
      field('modality', h('input', {
        id: 'studies-modality', name: 'modality', value: filters.modality || '', maxlength: 16,
        autocomplete: 'off', list: 'studies-modalities', placeholder: t('studies.filter.modality.hint'),
      })),
      h('datalist', { id: 'studies-modalities' }, MODALITIES.map((m) => h('option', { value: m }))),
      DATES.map((name) => field(name, dateInput(name))),
      field('source_ae', textInput('source_ae')),
      field('status', select('status', ['known', 'unknown'])),
      field('published', select('published', ['yes', 'no'])),
      h('div', { class: 'field actions' },
        h('button', { id: 'studies-submit', type: 'submit', class: 'primary' }, t('studies.filter.search')),
        h('a', { id: 'studies-clear', href: '#/studies', class: 'button ghost' }, t('studies.filter.clear'))));
  }

  // -- results -----------------------------------------------------------------------------------
  function row(s) {
    return h('tr', { 'data-study-uid': s.study_uid, 'data-patient-id': s.patient_id },
      h('td', { class: 'nowrap' }, h('a', { class: 'studies-link', href: studyHref(s.study_uid), title: s.study_uid }, studyWhen(s))),
      h('td', {}, nameEl(s.patient_name),
        h('div', { class: 'small nowrap' }, patientIdEl(s),
          h('span', { class: 'muted', title: t('studies.col.birth') },
            [daText(s.birth_date), sexText(s.sex)].filter(Boolean).map((v) => ` · ${v}`).join('')))),
      h('td', { class: 'mono' }, (s.modalities || []).join(', ') || NONE),
      h('td', {}, s.description || h('span', { class: 'muted' }, NONE)),
      h('td', { class: 'mono' }, s.accession_number || NONE),
      h('td', { class: 'num nowrap', title: t('studies.counts.title', { series: s.series, instances: s.instances }) },
        `${s.series} / ${s.instances}`),
      h('td', { class: 'mono' }, s.source_ae || NONE),
      h('td', { class: 'nowrap' }, timeEl(s.last_received_at)),
      h('td', { class: 'studies-badges nowrap' }, studyBadges(s)));
  }

  function emptyRow() {
    return h('tr', { class: 'empty-row' }, h('td', { colspan: COLUMNS.length, class: 'muted empty' },
      state.searched ? t('studies.none') : t('common.unavailable')));
  }

  function summaryText() {
    return t(state.next !== null ? 'studies.countMore' : 'studies.count', { n: state.rows.length });
  }

  function results() {
    return pagedTable({
      id: 'studies-table',
      head: h('thead', {}, h('tr', {}, COLUMNS.map((c) => h('th', { class: c === 'counts' ? 'num' : null }, t(`studies.col.${c}`))))),
      state, row, emptyRow,
      fetchPage: async (next) => {
        const page = await search(next);
        return { rows: page.studies || [], next: page.next_before ?? null };
      },
      moreId: 'studies-more',
      moreLabel: t('studies.more'),
      changed: () => { summary.textContent = summaryText(); },
    });
  }

  function render(root) {
    summary = h('span', { id: 'studies-summary', class: 'muted' }, state.searched ? summaryText() : '');
    fill(root, h('section', { id: 'studies-page', class: 'page' },
      h('div', { class: 'page-head' }, h('h1', {}, t('studies.title'))),
      form(),
      h('div', { class: 'toolbar' }, summary, h('span', { class: 'spacer' }),
        h('span', { class: 'muted small' }, t('studies.audited'))),
      results()));
  }

  return { title: 'studies.title', load, render };
}
