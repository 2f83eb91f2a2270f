/* Configuration: every option and its value; secrets are masked by the
 * server before they leave it. */
(() => {
  const { h } = KC;
  KC.page({ id: 'config', title: 'Configuration', order: 80, render(el) {
    el.append(KC.table({
      search: 'filter options',
      columns: [['name', 'Option'], ['value', 'Value'], ['help', 'Meaning']],
      load: async (q) => ({ rows: (await KC.get('config')).options.filter((o) => !q || o.name.includes(q) || o.help.includes(q)) }),
    }));
  } });
})();
