/* Console users (admins only): the list, adding one with a role, setting
 * a password, removing one. */
(() => {
  const { h } = KC;
  KC.page({ id: 'users', title: 'Console users', order: 95, render(el) {
    if (!KC.can('admin')) { el.append(h('p', { class: 'muted' }, 'Managing console users needs the admin role.')); return; }
    let t;
    t = KC.table({
      search: 'username contains',
      columns: [['username', 'Username'], ['role', 'Role'], ['create_time', 'Created', (u) => KC.time(u.create_time)],
        ['username', '', (u) => h('span', {},
          h('button', { class: 'secondary', onclick: () => {
            const password = prompt(`New password for ${u.username} (at least 8 characters)`, '');
            if (password) KC.write(`Set a new password for ${u.username} and end their sessions?`, 'users/passwd', { username: u.username, password });
          } }, 'Password'), ' ',
          h('button', { class: 'danger', onclick: () => KC.write(`Remove console user ${u.username}?`, 'users/remove', { username: u.username }, () => t.reload()) }, 'Remove'))]],
      load: async (q, cursor) => { const r = await KC.get('users', { q, cursor }); return { rows: r.users, cursor: r.cursor }; },
    });
    const f = h('form', { id: 'user-form', class: 'toolbar' },
      h('input', { name: 'username', placeholder: 'username', required: true }),
      h('input', { name: 'password', type: 'password', placeholder: 'password (8+)', required: true, autocomplete: 'new-password' }),
      h('select', { name: 'role' }, ['read-only', 'maintainer', 'developer', 'admin'].map((r) => h('option', { value: r }, r))),
      h('button', { type: 'submit' }, 'Add user'));
    f.onsubmit = (e) => {
      e.preventDefault();
      const d = Object.fromEntries(new FormData(f).entries());
      KC.write(`Add console user ${d.username} as ${d.role}?`, 'users/add', d, () => { f.reset(); t.reload(); });
    };
    el.append(f, t);
  } });
})();
