/** #/studies: placeholder. */

import { h, fill } from '../../dom.js';
import { t } from '../../i18n.js';

export function create() {
  return {
    title: 'studies.nav',
    render(root) {
      fill(root, h('h1', {}, t('studies.nav')));
    },
  };
}
