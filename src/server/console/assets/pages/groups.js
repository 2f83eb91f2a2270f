/* Groups: search by name prefix; a group's members. */
(() => {
  const { h } = KC;
  KC.page({ id: 'groups', title: 'Groups', order: 50, render(el, id) {
    if (id) {
      el.append(h('p', {}, 'Members of group ', h('code', {}, id)), KC.table({
        columns: [['username', 'Username'], ['state', 'State', (r) => ['superadmin', 'admin', 'member', 'join request', 'banned'][r.state]], ['id', 'Id']],
        load: async (q, cursor) => { const r = await KC.get('group/members', { id, cursor }); return { rows: r.members, cursor: r.cursor }; },
        click: (u) => { location.hash = '#/account/' + u.id; },
      }));
      return;
    }
    el.append(KC.table({
      search: 'name prefix',
      columns: [['name', 'Name'], ['description', 'Description'], ['open', 'Open'], ['edge_count', 'Members'], ['max_count', 'Max'], ['id', 'Id']],
      load: async (q, cursor) => { const r = await KC.get('groups', { q, cursor }); return { rows: r.groups, cursor: r.cursor }; },
      click: (g) => { location.hash = '#/groups/' + g.id; },
    }));
  } });
})();
