/* Parties: every party on this node, newest first (or the open, visible
 * ones whose label passes a query), with leader and members. Read only;
 * refreshed every 5 s. */
(() => {
  const { h } = KC;
  const names = (ps) => (ps || []).map((p) => p.username || p.user_id).join(', ');
  KC.page({ id: 'parties', title: 'Parties', order: 43, render(el) {
    const head = h('div');
    const t = KC.table({
      search: 'label query (open, visible parties), e.g. +mode:ranked',
      columns: [['party_id', 'Party'], ['label', 'Label'], ['open', 'Open', (p) => (p.open ? 'open' : 'closed') + (p.hidden ? ', hidden' : '')],
        ['size', 'Members', (p) => `${p.size}/${p.max_size}`], ['leader', 'Leader', (p) => p.leader.username || p.leader.user_id],
        ['presences', 'Presences', (p) => names(p.presences)]],
      load: async (q) => {
        const r = await KC.get('parties', { q, limit: 100 });
        head.replaceChildren(KC.kv(r.stats, [['parties', 'Parties'], ['listable', 'Open and visible'], ['connections', 'Sessions in a party or asking']]));
        return { rows: r.parties };
      },
    });
    el.append(head, t);
    KC.every(5000, () => t.reload());
  } });
})();
