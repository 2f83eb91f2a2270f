/* Notifications: send one to a user (stored, and delivered at once when
 * the user is online). */
(() => {
  const { h } = KC;
  KC.page({ id: 'notifications', title: 'Notifications', order: 60, render(el) {
    if (!KC.can('maintainer')) { el.append(h('p', { class: 'muted' }, 'Sending needs the maintainer role.')); return; }
    const f = h('form', { id: 'notify-form' },
      h('label', {}, 'User id ', h('input', { name: 'user_id', required: true, size: 40 })), ' ',
      h('label', {}, 'Subject ', h('input', { name: 'subject', required: true })), ' ',
      h('label', {}, 'Code ', h('input', { name: 'code', type: 'number', value: '0' })),
      h('div', {}, 'Content (JSON object)'), h('textarea', { name: 'content' }, '{}'),
      h('button', { type: 'submit' }, 'Send'));
    f.onsubmit = (e) => {
      e.preventDefault();
      const d = Object.fromEntries(new FormData(f).entries());
      KC.write(`Send "${d.subject}" to ${d.user_id}?`, 'notifications/send', { user_id: d.user_id, subject: d.subject, code: Number(d.code), content: d.content });
    };
    el.append(f);
  } });
})();
