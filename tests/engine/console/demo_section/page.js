/** #/demo: the test plugin's page (tests/engine/console/test_sections.py): its items, two at a time. */

import { request } from '../../api.js';
import { h, fill } from '../../dom.js';
import { t } from '../../i18n.js';
import { pagedTable } from '../../paged.js';

export function create(ctx) {
  const state = { rows: [], next: null };
  const fetchPage = async (before) => {
    const page = await request('GET', '/api/v1/demo/items', { params: { limit: 2, before } });
    return { rows: page.items, next: page.next_before };
  };
  let title = null;
  return {
    title: 'demo.nav',
    async load() {
      const first = await fetchPage(null);
      state.rows = first.rows;
      state.next = first.next;
    },
    render(root) {
      title = h('h1', { id: 'demo-title' }, t('demo.title', { n: state.rows.length }));
      fill(root,
        title,
        ...pagedTable({
          id: 'demo-items',
          head: h('thead', {}, h('tr', {}, h('th', {}, t('demo.item')))),
          state,
          row: (item) => h('tr', {}, h('td', {}, item)),
          emptyRow: () => h('tr', { class: 'empty-row' }, h('td', {}, '-')),
          fetchPage,
          moreId: 'demo-more',
          moreLabel: t('demo.more'),
          changed: () => { title.textContent = t('demo.title', { n: state.rows.length }); },
        }),
        h('p', { id: 'demo-params' }, ctx.params.join('|')),
        ctx.may('steward') ? h('button', { id: 'demo-change', type: 'button' }, t('demo.change')) : null);
    },
  };
}
