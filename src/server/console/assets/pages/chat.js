/* Chat: the channels with stored history, a channel's messages (newest
 * first), and removing one (delivered to the channel as a removal). */
(() => {
  const { h } = KC;
  KC.page({ id: 'chat', title: 'Chat', order: 55, render(el, id) {
    if (!id) {
      el.append(KC.table({
        search: 'channel id contains',
        columns: [['channel_id', 'Channel'], ['messages', 'Messages stored']],
        load: async (q, cursor) => { const r = await KC.get('chat/channels', { q, cursor }); return { rows: r.channels, cursor: r.cursor }; },
        click: (ch) => { location.hash = '#/chat/' + encodeURIComponent(ch.channel_id); },
      }));
      return;
    }
    let t;
    t = KC.table({
      columns: [['create_time_ms', 'Time', (m) => KC.time(m.create_time_ms / 1000)], ['username', 'Sender'], ['code', 'Code'],
        ['content', 'Content'], ['message_id', '', (m) => (KC.can('maintainer') ? h('button', { class: 'secondary', onclick: (e) => {
          e.stopPropagation();
          KC.write(`Remove the message of ${m.username || 'the server'}?`, 'chat/remove', { channel_id: id, message_id: m.message_id }, () => t.reload());
        } }, 'Remove') : '')]],
      load: async (q, cursor) => { const r = await KC.get('chat/messages', { channel_id: id, cursor }); return { rows: r.messages, cursor: r.cursor }; },
    });
    el.append(h('p', {}, 'Channel ', h('code', {}, id)), t);
  } });
})();
