/** #/demo: the test plugin's page (tests/engine/console/test_sections.py). */

import { request } from '../../api.js';
import { h, fill } from '../../dom.js';
import { t } from '../../i18n.js';

export function create(ctx) {
  let items = [];
  return {
    title: 'demo.nav',
    async load() {
      items = (await request('GET', '/api/v1/demo/items')).items;
    },
    render(root) {
      fill(root,
        h('h1', { id: 'demo-title' }, t('demo.title', { n: items.length })),
        h('ul', { id: 'demo-items' }, items.map((item) => h('li', {}, item))),
        h('p', { id: 'demo-params' }, ctx.params.join('|')),
        ctx.may('steward') ? h('button', { id: 'demo-change', type: 'button' }, t('demo.change')) : null);
    },
  };
}
