/* Accounts: search, and one account with its tabs — profile and metadata,
 * devices and links, wallet and ledger, friends, groups, storage, live
 * sessions, notifications — and the writes, each confirmed. */
(() => {
  const { h } = KC;
  const PAGE = 25;

  function list(el) {
    el.append(KC.table({
      search: 'id, username, email, device or custom id',
      columns: [['username', 'Username'], ['display_name', 'Display name'], ['email', 'Email'], ['id', 'Id'],
        ['create_time', 'Created', (r) => KC.time(r.create_time)], ['disable_time', 'Banned', (r) => (r.disable_time !== '0' ? 'banned' : '')]],
      load: async (q, cursor) => { const r = await KC.get('accounts', { q, cursor, limit: PAGE }); return { rows: r.accounts, cursor: r.cursor }; },
      click: (r) => { location.hash = '#/account/' + r.id; },
    }));
  }

  const paged = (path, key, columns) => (id) => KC.table({
    columns,
    load: async (q, cursor) => { const r = await KC.get(path, { id, cursor, limit: PAGE }); return { rows: r[key], cursor: r.cursor }; },
  });

  const tabs = {
    Profile: (id, a, reload) => {
      const box = h('div', {});
      box.append(KC.kv(a, [['id', 'Id'], ['username', 'Username'], ['display_name', 'Display name'], ['avatar_url', 'Avatar URL'],
        ['lang_tag', 'Language'], ['location', 'Location'], ['timezone', 'Time zone'], ['create_time', 'Created', KC.time],
        ['update_time', 'Updated', KC.time], ['disable_time', 'Banned since', KC.time], ['metadata', 'Metadata', KC.json]]));
      if (KC.can('developer')) {
        const form = h('form', { id: 'profile-form' });
        const field = (k, t) => h('label', {}, t + ' ', h('input', { name: k, value: a[k] || '' }));
        const meta = h('textarea', { name: 'metadata', id: 'profile-metadata' }, JSON.stringify(a.metadata, null, 2));
        form.append(h('h3', {}, 'Edit'), field('display_name', 'Display name'), ' ', field('location', 'Location'), ' ',
          field('timezone', 'Time zone'), h('div', {}, 'Metadata (JSON object)'), meta,
          h('button', { type: 'submit', id: 'profile-save' }, 'Save profile'));
        form.onsubmit = (e) => {
          e.preventDefault();
          const fd = new FormData(form);
          const params = { id };
          for (const [k, v] of fd.entries()) params[k] = k === 'metadata' ? JSON.stringify(JSON.parse(v)) : v;
          KC.write(`Save the profile of ${a.username}?`, 'account/update', params, reload);
        };
        box.append(form);
      }
      return box;
    },
    'Devices & links': (id, a, reload) => {
      const rows = [...a.devices.map((d) => ['device', d]), ...(a.email ? [['email', a.email]] : []), ...(a.custom_id ? [['custom', a.custom_id]] : [])];
      return h('table', {}, h('thead', {}, h('tr', {}, h('th', {}, 'Kind'), h('th', {}, 'Id'), h('th', {}, ''))),
        h('tbody', {}, rows.map(([kind, v]) => h('tr', {}, h('td', {}, kind), h('td', {}, v), h('td', {},
          KC.can('developer') ? h('button', { class: 'secondary', onclick: () => KC.write(`Unlink ${kind} ${v} from ${a.username}?`, 'account/unlink',
            kind === 'device' ? { id, device_id: v } : { id, what: kind }, reload) }, 'Unlink') : '')))));
    },
    'Wallet & ledger': (id, a) => h('div', {}, h('h3', {}, 'Wallet'), KC.json(a.wallet), h('h3', {}, 'Ledger'),
      paged('account/ledger', 'entries', [['create_time', 'Time', (r) => KC.time(r.create_time)], ['changeset', 'Change'], ['metadata', 'Metadata'], ['id', 'Id']])(id)),
    Friends: paged('account/friends', 'friends', [['user', 'Username', (r) => r.user.username], ['state', 'State', (r) => ['friend', 'invite sent', 'invite received', 'blocked'][r.state]], ['user', 'Id', (r) => r.user.id]]),
    Groups: paged('account/groups', 'groups', [['name', 'Name'], ['state', 'State', (r) => ['superadmin', 'admin', 'member', 'join request', 'banned'][r.state]], ['edge_count', 'Members'], ['id', 'Id']]),
    Storage: (id) => KC.table({
      columns: [['collection', 'Collection'], ['key', 'Key'], ['version', 'Version'], ['value', 'Value']],
      load: async () => ({ rows: (await KC.get('account/storage', { id })).objects }),
      click: (o) => { location.hash = `#/storage/${encodeURIComponent(o.collection)}/${encodeURIComponent(o.key)}/${o.user_id}`; },
    }),
    'Live sessions': (id, a) => h('div', { id: 'live-sessions' }, `${a.live_sessions} live connection(s) on this node.`),
    Notifications: paged('account/notifications', 'notifications', [['create_time', 'Time', (r) => KC.time(r.create_time)], ['subject', 'Subject'], ['code', 'Code'], ['content', 'Content']]),
  };

  async function one(el, id) {
    let a;
    try { a = await KC.get('account', { id }); } catch (e) { KC.banner(e.message); return; }
    const reload = () => { el.replaceChildren(h('h2', {}, 'Account')); one(el, id); };
    const banned = a.disable_time !== 0;
    const actions = h('div', { class: 'toolbar' },
      h('strong', { id: 'account-name' }, a.username), banned ? h('span', { class: 'error', id: 'account-banned' }, 'banned') : null,
      KC.can('maintainer') ? (banned
        ? h('button', { id: 'unban', onclick: () => KC.write(`Unban ${a.username}?`, 'account/unban', { id }, reload) }, 'Unban')
        : h('button', { id: 'ban', class: 'danger', onclick: () => KC.write(`Ban ${a.username} and end their sessions?`, 'account/ban', { id }, reload) }, 'Ban')) : null,
      h('button', { class: 'secondary', id: 'export', onclick: async () => {
        const doc = await KC.get('account/export', { id });
        const url = URL.createObjectURL(new Blob([JSON.stringify(doc, null, 2)], { type: 'application/json' }));
        h('a', { href: url, download: `account-${id}.json` }).click();
      } }, 'Export JSON'),
      KC.can('developer') ? h('button', { class: 'danger', id: 'delete', onclick: () => KC.write(`Delete ${a.username} and everything they own? This cannot be undone.`, 'account/delete', { id }, () => { location.hash = '#/accounts'; }) }, 'Delete') : null);
    const body = h('div', {});
    const bar = h('div', { class: 'tabs' });
    const show = (name) => {
      for (const b of bar.children) b.classList.toggle('active', b.textContent === name);
      body.replaceChildren(tabs[name](id, a, reload));
    };
    for (const name of Object.keys(tabs)) bar.append(h('button', { onclick: () => show(name) }, name));
    el.append(actions, bar, body);
    show('Profile');
  }

  KC.page({ id: 'accounts', title: 'Accounts', order: 20, render: list });
  KC.page({ id: 'account', title: 'Account', order: 21, nav: false, render: one });
})();
