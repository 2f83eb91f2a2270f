/* Runtime: the loaded Lua modules, the last reload and its error, and the
 * API explorer that calls any RPC. */
(() => {
  const { h } = KC;
  KC.page({ id: 'runtime', title: 'Runtime', order: 70, async render(el) {
    try {
      const r = await KC.get('runtime');
      const names = (v) => (v && v.length ? [...v].sort().join(', ') : '—');
      el.append(KC.kv(r, [['path', 'Module path'], ['module_count', 'Modules loaded'], ['modules', 'Modules', names],
        ['rpcs', 'RPCs', names], ['before_hooks', 'Before hooks', names], ['after_hooks', 'After hooks', names],
        ['match_handlers', 'Match handlers', names], ['watch', 'Reload on change'],
        ['last_reload_ms', 'Last (re)load', (v) => KC.time(v / 1000)], ['last_error', 'Last reload error']]));
    } catch (e) { KC.banner(e.message); }
    if (!KC.can('developer')) return;
    const out = h('pre', { id: 'rpc-result' }, '');
    const f = h('form', { id: 'rpc-form' }, h('h3', {}, 'API explorer'),
      h('label', {}, 'RPC id ', h('input', { name: 'id', required: true })), ' ',
      h('label', {}, 'As user ', h('input', { name: 'user_id', placeholder: 'user id (optional)', size: 38 })),
      h('div', {}, 'Payload'), h('textarea', { name: 'payload' }, ''), h('button', { type: 'submit' }, 'Call'));
    f.onsubmit = (e) => {
      e.preventDefault();
      const d = Object.fromEntries(new FormData(f).entries());
      KC.write(`Call RPC ${d.id}?`, 'runtime/rpc', d, (r) => { out.textContent = r.payload; });
    };
    el.append(f, h('h3', {}, 'Result'), out);
  } });
})();
