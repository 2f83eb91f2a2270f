/* Audit log: every write made through the console, refused or done. */
(() => {
  KC.page({ id: 'audit', title: 'Audit log', order: 90, render(el) {
    el.append(KC.table({
      search: 'console user, action or target',
      columns: [['time', 'Time', (r) => KC.time(r.time)], ['username', 'User'], ['role', 'Role'], ['action', 'Action'],
        ['target', 'Target'], ['result', 'Result', (r) => (r.result === '0' ? 'done' : 'refused (' + r.result + ')')], ['detail', 'Detail'], ['address', 'From']],
      load: async (q, cursor) => { const r = await KC.get('audit', { q, cursor, limit: 50 }); return { rows: r.entries, cursor: r.cursor }; },
    }));
  } });
})();
