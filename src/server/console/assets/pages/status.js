/* Status: the server's counters, live (every 2 s), with a chart of the last
 * minutes for each rate. Numbers come from the same handler as /metrics; the
 * charts start from the history the server keeps (its samples of the last
 * minutes), so a page opened now shows them at once. */
(() => {
  const { h } = KC;
  const history = {};
  const WINDOW = 150; /* samples: 5 minutes at 2 s */
  let last = null;
  const m = (s, k) => s.metrics[k] || 0;
  const threads = (s, name) => Object.keys(s.metrics).filter((k) => k.startsWith(name + '{')).sort()
    .map((k) => `${k.slice(name.length + 1, -1).replace('thread=', '#').replace(/"/g, '')}: ${s.metrics[k]}`).join(', ');

  function spark(values) {
    const c = h('canvas', { width: 160, height: 40 });
    const g = c.getContext('2d');
    const max = Math.max(1, ...values);
    g.strokeStyle = '#3056d3';
    g.beginPath();
    values.forEach((v, i) => { const x = (i / (WINDOW - 1)) * 160, y = 38 - (v / max) * 36; i ? g.lineTo(x, y) : g.moveTo(x, y); });
    g.stroke();
    return c;
  }

  function card(key, title, value, chart) {
    if (chart) { (history[key] = history[key] || []).push(value); if (history[key].length > WINDOW) history[key].shift(); }
    return h('div', { class: 'card', 'data-metric': key, 'data-points': chart ? history[key].length : 0 },
      h('div', { class: 'k' }, title),
      h('div', { class: 'v' }, typeof value === 'number' ? (Number.isInteger(value) ? value : value.toFixed(1)) : value),
      chart ? spark(history[key]) : null);
  }

  /* This node's view of the cluster (docs/cluster.md): peers up and the bus. */
  function cluster(s) {
    if (!('kaos_cluster_bus_connected' in s.metrics)) return 'single node';
    const up = Object.keys(s.metrics).filter((k) => k.startsWith('kaos_cluster_peer_up{'))
      .map((k) => `${k.slice('kaos_cluster_peer_up{peer="'.length, -2)} ${s.metrics[k] ? 'up' : 'down'}`);
    return `bus ${m(s, 'kaos_cluster_bus_connected') ? 'connected' : 'down'}, ${m(s, 'kaos_cluster_peers')} peers up` +
      (up.length ? ` (${up.join(', ')})` : '');
  }

  function fmtUptime(ms) {
    const s = Math.floor(ms / 1000);
    return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h ${Math.floor((s % 3600) / 60)}m ${s % 60}s`;
  }

  /* Charted cards: gauges as they are, counters as rates between samples. */
  const CHARTS = { sessions: ['kaos_sessions', false], connections: ['kaos_connections_current', false],
    matches: ['kaos_matches', false], api_queue: ['kaos_api_pending', false],
    rps: ['kaos_requests_total', true], eps: ['kaos_request_errors_total', true],
    bin: ['kaos_bytes_in_total', true], bout: ['kaos_bytes_out_total', true] };

  function seed(hist) {
    const samples = (hist && hist.samples) || [];
    for (const [key, [metric, isRate]] of Object.entries(CHARTS)) {
      const values = [];
      samples.forEach((smp, i) => {
        const v = smp.metrics[metric] || 0;
        if (!isRate) values.push(v);
        else if (i > 0) {
          const prev = samples[i - 1], dt = (smp.time_ms - prev.time_ms) / 1000;
          values.push(dt > 0 ? Math.max(0, (v - (prev.metrics[metric] || 0)) / dt) : 0);
        }
      });
      history[key] = values.slice(-(WINDOW - 1));
    }
  }

  async function refresh(box) {
    let s;
    try { s = await KC.get('status'); } catch (e) { KC.banner(e.message); return; }
    if (!last) seed(s.history);
    const dt = last ? (s.time_ms - last.time_ms) / 1000 : 0;
    const rate = (k) => (last && dt > 0 ? Math.max(0, (m(s, k) - m(last, k)) / dt) : 0);
    box.replaceChildren(
      card('uptime', 'Uptime', fmtUptime(s.uptime_ms)),
      card('sessions', 'Sessions', m(s, 'kaos_sessions'), true),
      card('connections', 'Connections', m(s, 'kaos_connections_current'), true),
      card('per_thread', 'Connections per network thread', threads(s, 'kaos_net_thread_connections') || '—'),
      card('matches', 'Authoritative matches', m(s, 'kaos_matches'), true),
      card('relayed', 'Relayed matches', m(s, 'kaos_relayed_matches')),
      card('lateness', 'Worst tick lateness (µs)', m(s, 'kaos_match_tick_lateness_us_max')),
      card('late_ticks', 'Late ticks', m(s, 'kaos_match_late_ticks_total')),
      card('api_queue', 'API queue', m(s, 'kaos_api_pending'), true),
      card('rps', 'Requests / s', rate('kaos_requests_total'), true),
      card('eps', 'Errors / s', rate('kaos_request_errors_total'), true),
      card('bin', 'Bytes in / s', rate('kaos_bytes_in_total'), true),
      card('bout', 'Bytes out / s', rate('kaos_bytes_out_total'), true),
      card('streams', 'Stream presences', m(s, 'kaos_stream_presences')),
      card('cluster', 'Cluster', cluster(s)));
    last = s;
  }

  KC.page({ id: 'status', title: 'Status', order: 10, render(el) {
    const box = h('div', { class: 'cards', id: 'status-cards' });
    el.append(box);
    refresh(box);
    KC.every(2000, () => refresh(box));
  } });
})();
