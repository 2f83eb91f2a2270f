/* Leaderboards: the boards this node knows, a board's records in rank
 * order, removing a record (maintainer) or a board (developer). */
(() => {
  const { h } = KC;
  KC.page({ id: 'leaderboards', title: 'Leaderboards', order: 45, render(el, id) {
    if (!id) {
      el.append(KC.table({
        search: 'id contains',
        columns: [['id', 'Id'], ['sort_order', 'Sort'], ['operator', 'Operator'], ['reset_schedule', 'Reset'], ['authoritative', 'Authoritative']],
        load: async (q) => ({ rows: (await KC.get('leaderboards')).leaderboards.filter((b) => !q || b.id.includes(q)) }),
        click: (b) => { location.hash = '#/leaderboards/' + encodeURIComponent(b.id); },
      }));
      return;
    }
    let t;
    t = KC.table({
      columns: [['rank', 'Rank'], ['username', 'Owner'], ['score', 'Score'], ['subscore', 'Subscore'], ['num_score', 'Submissions'],
        ['update_time', 'Updated', (r) => KC.time(r.update_time)],
        ['owner_id', '', (r) => (KC.can('maintainer') ? h('button', { class: 'secondary', onclick: () => KC.write(`Delete the record of ${r.username}?`, 'leaderboard/record/delete', { id, owner_id: r.owner_id }, () => t.reload()) }, 'Delete') : '')]],
      load: async (q, cursor) => { const r = await KC.get('leaderboard/records', { id, cursor }); return { rows: r.records, cursor: r.cursor }; },
    });
    el.append(h('div', { class: 'toolbar' }, h('code', {}, id),
      KC.can('developer') ? h('button', { class: 'danger', onclick: () => KC.write(`Delete leaderboard ${id} and all its records?`, 'leaderboard/delete', { id }, () => { location.hash = '#/leaderboards'; }) }, 'Delete board') : null), t);
  } });
})();
