/* Storage: browse a collection (optionally one owner's objects), view an
 * object, edit it with a version check, delete it. */
(() => {
  const { h } = KC;

  async function browse(el) {
    let cols = [];
    try { cols = (await KC.get('storage/collections')).collections; } catch (e) { KC.banner(e.message); }
    const pick = h('select', { id: 'storage-collection', 'aria-label': 'collection' }, cols.map((c) => h('option', { value: c.collection }, `${c.collection} (${c.count})`)));
    const owner = h('input', { id: 'storage-owner', placeholder: 'owner user id (optional)' });
    const box = h('div', {});
    const show = () => box.replaceChildren(KC.table({
      columns: [['collection', 'Collection'], ['key', 'Key'], ['user_id', 'Owner'], ['version', 'Version'], ['update_time_ms', 'Updated', (r) => KC.time(r.update_time_ms / 1000)]],
      load: async (q, cursor) => { const r = await KC.get('storage', { collection: pick.value, user_id: owner.value.trim(), cursor, limit: 25 }); return { rows: r.objects, cursor: r.cursor }; },
      click: (o) => { location.hash = `#/storage/${encodeURIComponent(o.collection)}/${encodeURIComponent(o.key)}/${o.user_id}`; },
    }));
    pick.onchange = show;
    el.append(h('div', { class: 'toolbar' }, pick, owner, h('button', { onclick: show }, 'Browse')), box);
    if (cols.length) show();
  }

  async function object(el, collection, key, userId) {
    let o;
    try { o = await KC.get('storage/object', { collection, key, user_id: userId }); } catch (e) { KC.banner(e.message); return; }
    const value = h('textarea', { id: 'storage-value' }, JSON.stringify(o.value, null, 2));
    const save = h('button', { id: 'storage-save', onclick: () => {
      let v;
      try { v = JSON.stringify(JSON.parse(value.value)); } catch (e) { KC.banner('The value is not JSON: ' + e.message); return; }
      KC.write(`Save ${collection}/${key} (version ${o.version})?`, 'storage/write',
        { collection, key, user_id: userId, value: v, version: o.version, permission_read: o.permission_read, permission_write: o.permission_write },
        () => { el.replaceChildren(h('h2', {}, 'Storage')); object(el, collection, key, userId); });
    } }, 'Save');
    const del = h('button', { class: 'danger', id: 'storage-delete', onclick: () => KC.write(`Delete ${collection}/${key}?`, 'storage/delete',
      { collection, key, user_id: userId, version: o.version }, () => { location.hash = '#/storage'; }) }, 'Delete');
    el.append(KC.kv(o, [['collection', 'Collection'], ['key', 'Key'], ['user_id', 'Owner'], ['version', 'Version'],
      ['permission_read', 'Read'], ['permission_write', 'Write']]), h('h3', {}, 'Value'), value,
    KC.can('developer') ? h('div', { class: 'toolbar' }, save, del) : null);
  }

  KC.page({ id: 'storage', title: 'Storage', order: 30, render(el, arg) {
    const [c, k, u] = arg ? arg.split('/') : [];
    if (c && k && u) object(el, c, k, u); else browse(el);
  } });
})();
