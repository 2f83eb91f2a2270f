/* Tournaments: every tournament by category and start time, with its
 * window now; a tournament's records in rank order. Deleting a record or
 * the tournament is on its board's page (Leaderboards). */
(() => {
  const { h } = KC;
  KC.page({ id: 'tournaments', title: 'Tournaments', order: 46, render(el, id) {
    if (!id) {
      el.append(KC.table({
        columns: [['id', 'Id'], ['title', 'Title'], ['category', 'Category'], ['size', 'Joined', (t) => t.max_size ? `${t.size} / ${t.max_size}` : `${t.size}`],
          ['max_num_score', 'Tries'], ['start_time', 'Starts', (t) => KC.time(t.start_time)],
          ['end_time', 'Ends', (t) => (t.end_time ? KC.time(t.end_time) : 'never')], ['can_enter', 'Open now']],
        load: async (q, cursor) => { const r = await KC.get('tournaments', { cursor }); return { rows: r.tournaments, cursor: r.cursor }; },
        click: (t) => { location.hash = '#/tournaments/' + encodeURIComponent(t.id); },
      }));
      return;
    }
    const t = KC.table({
      columns: [['rank', 'Rank'], ['username', 'Owner'], ['score', 'Score'], ['subscore', 'Subscore'], ['num_score', 'Submissions'],
        ['update_time', 'Updated', (r) => KC.time(r.update_time)]],
      load: async (q, cursor) => { const r = await KC.get('tournament/records', { id, cursor }); return { rows: r.records, cursor: r.cursor }; },
    });
    el.append(h('div', { class: 'toolbar' }, h('code', {}, id),
      h('a', { href: '#/leaderboards/' + encodeURIComponent(id) }, 'Board')), t);
  } });
})();
