/**
 * A results table that grows a page at a time, as the API's lists are paged: the rows loaded so far
 * and a "more" button that fetches the next page from the cursor (`next_before`, `next`) until there
 * is none. The messages, audit trail and the sections' lists share it.
 */

import { h } from './dom.js';

/**
 * The table (in a scrolling .table-wrap) and the row with its "more" button, as two nodes.
 *
 * `state` is {rows, next}, changed in place as pages come; `fetchPage(next)` resolves to {rows, next};
 * `row(item)` draws one row and `emptyRow()` the row shown while there is none (class empty-row);
 * `head` is the table's thead; `changed()` runs after each page (to update a count).
 */
export function pagedTable({ id, head, state, row, emptyRow, fetchPage, moreId, moreLabel, changed = () => {} }) {
  const tbody = h('tbody', {}, state.rows.length ? state.rows.map(row) : emptyRow());
  const more = h('button', { id: moreId, type: 'button', hidden: state.next === null }, moreLabel);
  more.addEventListener('click', async () => {
    more.disabled = true;
    try {
      const page = await fetchPage(state.next);
      state.rows.push(...page.rows);
      state.next = page.next ?? null;
      const empty = tbody.querySelector('.empty-row');
      if (empty && page.rows.length) empty.remove();
      tbody.append(...page.rows.map(row));
    } catch {
      // shown in the banner
    } finally {
      more.disabled = false;
      more.hidden = state.next === null;
      changed();
    }
  });
  return [
    h('div', { class: 'table-wrap tall' }, h('table', { id, class: 'data' }, head, tbody)),
    h('div', { class: 'below-table' }, more),
  ];
}
