/** #/documents: placeholder. */

import { h, fill } from '../../dom.js';
import { t } from '../../i18n.js';

export function create() {
  return {
    title: 'documents.nav',
    render(root) {
      fill(root, h('h1', {}, t('documents.nav')));
    },
  };
}
