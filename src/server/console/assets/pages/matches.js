/* Matches: the live authoritative matches (label, size, tick rate), a
 * search by label query, and a signal to one; a match's page has its
 * presences. */
(() => {
  const { h } = KC;
  KC.page({ id: 'matches', title: 'Matches', order: 40, render(el, id) {
    if (id) {
      const head = h('div');
      const ps = KC.table({
        columns: [['slot', 'Slot'], ['username', 'Username'], ['user_id', 'User'], ['session_id', 'Session']],
        load: async () => {
          const m = await KC.get('match', { match_id: id });
          head.replaceChildren(KC.kv(m, [['match_id', 'Match'], ['handler', 'Handler'], ['label', 'Label'], ['size', 'Players'], ['tick_rate', 'Tick rate']]));
          return { rows: m.presences };
        },
        click: (p) => { location.hash = '#/account/' + encodeURIComponent(p.user_id); },
      });
      el.append(head, h('h3', {}, 'Presences'), ps);
      KC.every(5000, () => ps.reload());
      return;
    }
    const t = KC.table({
      search: 'label query, e.g. +mode:ffa',
      columns: [['match_id', 'Match'], ['handler', 'Handler'], ['label', 'Label'], ['size', 'Players'], ['tick_rate', 'Tick rate'],
        ['match_id', '', (r) => (KC.can('maintainer') ? h('button', { class: 'secondary', onclick: async (e) => {
          e.stopPropagation();
          const data = prompt('Signal data to send to ' + r.match_id, '');
          if (data === null) return;
          await KC.write(`Signal match ${r.match_id}?`, 'matches/signal', { match_id: r.match_id, data }, (res) => KC.banner('Match answered: ' + res.response, true));
        } }, 'Signal') : '')]],
      load: async (q) => ({ rows: (await KC.get('matches', { q })).matches }),
      click: (m) => { location.hash = '#/matches/' + encodeURIComponent(m.match_id); },
    });
    el.append(t);
    KC.every(5000, () => t.reload());
  } });
})();
