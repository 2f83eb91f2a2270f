/* Matches: the live authoritative matches (label, size, tick rate), a
 * search by label query, and a signal to one. */
(() => {
  const { h } = KC;
  KC.page({ id: 'matches', title: 'Matches', order: 40, render(el) {
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
    });
    el.append(t);
    KC.every(5000, () => t.reload());
  } });
})();
