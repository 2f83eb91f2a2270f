/* Matchmaker: its counters, its last passes (when, how long, the pool it
 * saw, the groups it formed) and the tickets waiting, oldest first. Read
 * only; refreshed every 5 s. */
(() => {
  const { h } = KC;
  const players = (t) => (t.players || []).map((p) => p.username || p.user_id).join(', ');
  const widen = (t) => (t.widen || []).map((w) => `${w.property} +${w.by} (${w.step}/pass, ${w.max} max)`).join('; ');
  KC.page({ id: 'matchmaker', title: 'Matchmaker', order: 42, render(el) {
    const head = h('div');
    const passes = KC.table({
      columns: [['ago_ms', 'Started', (p) => (p.ago_ms / 1000).toFixed(1) + ' s ago'], ['us', 'Took', (p) => (p.us / 1000).toFixed(2) + ' ms'],
        ['tickets', 'Tickets seen'], ['groups', 'Groups formed'], ['fallback', 'Fallback', (p) => (p.fallback ? 'yes' : '')]],
      load: async () => {
        const r = await KC.get('matchmaker', { limit: 100 });
        head.replaceChildren(KC.kv(r.stats, [['tickets', 'Tickets waiting'], ['passes', 'Passes'], ['matched', 'Groups formed'],
          ['fallbacks', 'Fallbacks'], ['pass_us_mean', 'Mean pass', (v) => (v / 1000).toFixed(2) + ' ms'],
          ['pass_us_max', 'Longest pass', (v) => (v / 1000).toFixed(2) + ' ms']]));
        tickets.rows = r.tickets;
        tickets.reload();
        return { rows: r.passes };
      },
    });
    const tickets = KC.table({
      columns: [['ticket', 'Ticket'], ['players', 'Players', players], ['party_id', 'Party'], ['query', 'Query'],
        ['min_count', 'Size', (t) => `${t.min_count}-${t.max_count}` + (t.count_multiple > 1 ? ` x${t.count_multiple}` : '')],
        ['intervals', 'Passes waited'], ['widen', 'Widening', widen], ['properties', 'Properties']],
      load: async () => ({ rows: tickets.rows || [] }),
    });
    el.append(head, h('h3', {}, 'Last passes'), passes, h('h3', {}, 'Tickets waiting (oldest first, 100 at most)'), tickets);
    KC.every(5000, () => passes.reload());
  } });
})();
