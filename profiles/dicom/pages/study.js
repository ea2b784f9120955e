/**
 * #/studies/<Study Instance UID>: one study of the archive (GET /api/v1/studies/<uid>; the view is
 * recorded in the audit trail as DICOM Instances Accessed): the study and its patient as the PACS
 * sent them and as the EMPI knows him, its XDS-I.b publication, the WADO-RS addresses when this engine
 * serves WADO, and its series, each opening onto its instances with the C-STORE message that brought
 * each one.
 */

import { request } from '../../api.js';
import { h, fill } from '../../dom.js';
import { NONE, count, messageHref, timeEl } from '../../format.js';
import { t } from '../../i18n.js';
import { bytes, daText, nameEl, patientIdEl, searchHref, sexText, studyBadges, studyWhen } from './common.js';

export function create(ctx) {
  const uid = ctx.params[0];
  const mayMessages = ctx.may('messages');
  const state = { study: null, open: new Set() };

  async function load() {
    state.study = await request('GET', `/api/v1/studies/${encodeURIComponent(uid)}`);
    if (state.study.series && state.study.series.length === 1) state.open.add(state.study.series[0].series_uid);
  }

  function pair(key, ...value) {
    const shown = value.filter((v) => v !== null && v !== undefined && v !== '');
    return [h('dt', {}, t(key)), h('dd', {}, shown.length ? shown : h('span', { class: 'muted' }, NONE))];
  }

  const mono = (text) => (text ? h('span', { class: 'mono' }, String(text)) : '');

  function studyCard(s) {
    return h('section', { id: 'studies-study', class: 'card' },
      h('h2', {}, t('studies.study')),
      h('dl', { class: 'meta' },
        pair('studies.field.date', studyWhen(s)),
        pair('studies.field.accession', mono(s.accession_number)),
        pair('studies.field.description', s.description),
        pair('studies.field.studyId', mono(s.study_id)),
        pair('studies.field.modalities', mono((s.modalities || []).join(', '))),
        pair('studies.field.referring', s.referring_physician ? nameEl(s.referring_physician) : ''),
        pair('studies.field.counts', t('studies.counts.title', { series: (s.series || []).length, instances: s.instances })),
        pair('studies.field.size', bytes(s.size)),
        pair('studies.field.source', mono(s.source_ae)),
        pair('studies.field.uid', mono(s.study_uid)),
        pair('studies.field.firstReceived', timeEl(s.first_received_at)),
        pair('studies.field.lastReceived', timeEl(s.last_received_at))));
  }

  function patientCard(s) {
    const person = s.person_id !== null && s.person_id !== undefined
      ? h('span', { id: 'studies-person' }, mono(s.domain || NONE), ' · ', t('studies.person', { id: s.person_id }))
      : h('span', { id: 'studies-person', class: 'muted' }, t('studies.unknown.title'));
    return h('section', { id: 'studies-patient', class: 'card' },
      h('h2', {}, t('studies.patient')),
      h('dl', { class: 'meta studies-pairs' },
        pair('studies.field.name', nameEl(s.patient_name)),
        pair('studies.field.patientId', patientIdEl(s)),
        pair('studies.field.birth', daText(s.birth_date)),
        pair('studies.field.sex', sexText(s.sex)),
        pair('studies.field.empi', person)));
  }

  function publicationCard(s) {
    const wado = s.wado;
    return h('section', { id: 'studies-publication', class: 'card' },
      h('h2', {}, t('studies.publication')),
      h('dl', { class: 'meta studies-pairs' },
        pair('studies.field.published', s.published_at ? timeEl(s.published_at) : t('studies.notPublished')),
        pair('studies.field.manifest', mono(s.manifest_uid))),
      wado
        ? h('p', { id: 'studies-wado', class: 'studies-wado' },
          h('span', { class: 'muted' }, t('studies.wado')), ' ',
          h('a', { id: 'studies-wado-metadata', href: wado.metadata, target: '_blank', rel: 'noopener noreferrer' }, t('studies.wado.metadata')),
          ' · ',
          h('a', { id: 'studies-wado-instances', href: wado.study, target: '_blank', rel: 'noopener noreferrer' }, t('studies.wado.instances')))
        : null);
  }

  // -- series and instances ----------------------------------------------------------------------
  function instancesTable(se) {
    const listed = se.instances_listed || [];
    return h('div', { class: 'studies-instances-wrap' },
      h('table', { class: 'data small studies-instances', 'data-series-uid': se.series_uid },
        h('thead', {}, h('tr', {},
          ['number', 'sopClass', 'syntax', 'size', 'received', 'message'].map((c) => h('th', {
            class: c === 'number' || c === 'size' ? 'num' : null,
          }, t(`studies.instance.${c}`))))),
        h('tbody', {}, listed.map((i) => h('tr', { 'data-sop-instance-uid': i.sop_instance_uid },
          h('td', { class: 'num' }, i.instance_number ?? NONE),
          h('td', { title: i.sop_class_uid }, i.sop_class, h('div', { class: 'muted small mono' }, i.sop_instance_uid)),
          h('td', { title: i.transfer_syntax_uid }, i.transfer_syntax),
          h('td', { class: 'num nowrap' }, bytes(i.size)),
          h('td', { class: 'nowrap' }, timeEl(i.received_at), i.source_ae ? h('span', { class: 'muted' }, ` · ${i.source_ae}`) : null),
          h('td', { class: 'nowrap' }, i.message_id !== null && i.message_id !== undefined
            ? (mayMessages
              ? h('a', { class: 'studies-message', href: messageHref(i.message_id) }, t('studies.instance.cstore', { id: i.message_id }))
              : mono(i.message_id))
            : h('span', { class: 'muted' }, NONE)))))),
      listed.length < se.instances
        ? h('p', { class: 'muted small' }, t('studies.instance.truncated', { shown: count(listed.length), total: count(se.instances) }))
        : null);
  }

  function seriesRows(se) {
    const open = state.open.has(se.series_uid);
    const detail = h('tr', { class: 'studies-instances-row', 'data-instances-of': se.series_uid, hidden: !open },
      h('td', { colspan: 7 }, instancesTable(se)));
    const toggle = h('button', {
      type: 'button', class: 'studies-toggle', 'aria-expanded': open ? 'true' : 'false',
      title: t('studies.series.toggle'),
    }, open ? '▾' : '▸');
    toggle.addEventListener('click', () => {
      const now = !state.open.has(se.series_uid);
      if (now) state.open.add(se.series_uid);
      else state.open.delete(se.series_uid);
      detail.hidden = !now;
      toggle.setAttribute('aria-expanded', now ? 'true' : 'false');
      toggle.textContent = now ? '▾' : '▸';
    });
    return [
      h('tr', { 'data-series-uid': se.series_uid },
        h('td', {}, toggle),
        h('td', { class: 'num' }, se.series_number ?? NONE),
        h('td', { class: 'mono' }, se.modality || NONE),
        h('td', {}, se.description || h('span', { class: 'muted' }, NONE), h('div', { class: 'muted small mono' }, se.series_uid)),
        h('td', {}, se.body_part || h('span', { class: 'muted' }, NONE)),
        h('td', { class: 'num' }, count(se.instances)),
        h('td', { class: 'num nowrap' }, bytes(se.size))),
      detail,
    ];
  }

  function seriesCard(s) {
    const list = s.series || [];
    return h('section', { class: 'card studies-series-card' },
      h('h2', {}, t('studies.series', { n: list.length })),
      h('div', { class: 'table-wrap' },
        h('table', { id: 'studies-series', class: 'data' },
          h('thead', {}, h('tr', {},
            h('th', {}, h('span', { class: 'visually-hidden' }, t('studies.series.toggle'))),
            ['number', 'modality', 'description', 'bodyPart', 'instances', 'size'].map((c) => h('th', {
              class: ['number', 'instances', 'size'].includes(c) ? 'num' : null,
            }, t(`studies.series.${c}`))))),
          h('tbody', {}, list.length
            ? list.map(seriesRows)
            : h('tr', {}, h('td', { colspan: 7, class: 'muted empty' }, t('studies.series.none')))))));
  }

  function render(root) {
    const s = state.study;
    const name = nameEl(s.patient_name, { id: 'studies-title-name' });
    fill(root, h('article', { id: 'studies-detail', class: 'page', 'data-study-uid': s.study_uid },
      h('div', { class: 'page-head' },
        h('h1', {}, name, ' ', studyBadges(s)),
        h('a', { id: 'studies-back', href: searchHref(), class: 'muted' }, t('studies.back'))),
      h('p', { id: 'studies-audit-notice', class: 'audit-notice' }, t('studies.auditNotice')),
      h('div', { class: 'studies-top' }, studyCard(s), h('div', { class: 'side' }, patientCard(s), publicationCard(s))),
      seriesCard(s)));
  }

  return { title: 'studies.pageTitle', load, render };
}
