/* KaosNet console: the shell (login, navigation, the API client, tables,
 * confirmations). Pages register themselves with KC.page() from
 * pages/*.js; the build concatenates those into /assets/pages.js.
 * No framework, no build step; text reaches the DOM only as textContent. */
'use strict';
const KC = (() => {
  const pages = [];
  let csrf = '';
  let me = null;
  const $ = (id) => document.getElementById(id);

  /* h('tag', {attrs, onclick...}, children...) */
  function h(tag, attrs, ...kids) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'class') el.className = v;
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat()) {
      if (kid === null || kid === undefined || kid === false) continue;
      el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return el;
  }

  class ApiError extends Error {
    constructor(status, code, message) { super(message); this.status = status; this.code = code; }
  }

  async function api(method, path, params) {
    let url = '/v2/console/' + path;
    const opts = { method, credentials: 'same-origin', headers: {} };
    if (method === 'GET' && params) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
      if ([...q].length) url += '?' + q;
    } else if (method === 'POST') {
      opts.headers['Content-Type'] = 'application/json';
      if (csrf) opts.headers['X-Kaos-Csrf'] = csrf;
      opts.body = JSON.stringify(params || {});
    }
    const r = await fetch(url, opts);
    const body = await r.json().catch(() => ({}));
    if (r.status === 401 && path !== 'login') { showLogin('Your session ended; log in again.'); }
    if (!r.ok) throw new ApiError(r.status, body.code, body.message || r.statusText);
    return body;
  }
  const get = (path, params) => api('GET', path, params);
  const post = (path, params) => api('POST', path, params);

  function banner(text, ok) {
    const b = $('banner');
    b.textContent = text;
    b.className = ok ? 'banner ok' : 'banner';
    b.hidden = !text;
  }

  /* A confirmation for every write; resolves true when confirmed. */
  function confirm(text) {
    const d = $('confirm');
    $('confirm-text').textContent = text;
    return new Promise((resolve) => {
      d.addEventListener('close', () => resolve(d.returnValue === 'ok'), { once: true });
      d.showModal();
    });
  }

  /* Confirm, call, report. */
  async function write(question, path, params, done) {
    if (!(await confirm(question))) return null;
    try {
      const r = await post(path, params);
      banner('Done: ' + question.replace(/\?$/, ''), true);
      if (done) await done(r);
      return r;
    } catch (e) {
      banner(e.message);
      return null;
    }
  }

  /* A paginated, searchable table. opts: {columns: [[key, title, fn?]],
   * load(q, cursor) -> {rows, cursor}, search: placeholder, click(row)} */
  function table(opts) {
    const wrap = h('div', { class: 'table' });
    const input = opts.search ? h('input', { type: 'search', placeholder: opts.search, 'aria-label': opts.search }) : null;
    const tbody = h('tbody');
    const prev = h('button', { class: 'secondary', disabled: true }, 'Previous');
    const next = h('button', { class: 'secondary', disabled: true }, 'Next');
    const status = h('span', { class: 'muted' });
    let stack = [''];
    let nextCursor = null;
    async function load() {
      status.textContent = 'loading…';
      try {
        const r = await opts.load(input ? input.value.trim() : '', stack[stack.length - 1]);
        tbody.replaceChildren(...r.rows.map((row) => {
          const tr = h('tr', { class: opts.click ? 'clickable' : null, onclick: opts.click ? () => opts.click(row) : null },
            opts.columns.map(([k, , fn]) => h('td', {}, fn ? fn(row) : fmt(row[k]))));
          return tr;
        }));
        if (!r.rows.length) tbody.append(h('tr', {}, h('td', { colspan: opts.columns.length, class: 'muted' }, 'nothing here')));
        nextCursor = r.cursor || null;
        next.disabled = !nextCursor;
        prev.disabled = stack.length < 2;
        status.textContent = '';
      } catch (e) { status.textContent = e.message; }
    }
    next.onclick = () => { if (nextCursor) { stack.push(nextCursor); load(); } };
    prev.onclick = () => { if (stack.length > 1) { stack.pop(); load(); } };
    if (input) {
      const go = h('button', { onclick: () => { stack = ['']; load(); } }, 'Search');
      input.addEventListener('keydown', (e) => { if (e.key === 'Enter') go.click(); });
      wrap.append(h('div', { class: 'toolbar' }, input, go));
    }
    wrap.append(h('table', {}, h('thead', {}, h('tr', {}, opts.columns.map(([, t]) => h('th', {}, t)))), tbody),
      h('div', { class: 'pager' }, prev, next, status));
    wrap.reload = load;
    load();
    return wrap;
  }

  function fmt(v) {
    if (v === null || v === undefined) return '';
    if (typeof v === 'object') return JSON.stringify(v);
    return String(v);
  }
  const time = (s) => (s && s !== '0' ? new Date(Number(s) * 1000).toISOString().replace('T', ' ').slice(0, 19) : '');
  const json = (v) => h('pre', {}, JSON.stringify(v, null, 2));
  const kv = (obj, keys) => h('dl', { class: 'kv' }, keys.flatMap(([k, t, fn]) => [h('dt', {}, t), h('dd', {}, fn ? fn(obj[k]) : fmt(obj[k]))]));
  const can = (role) => ['read-only', 'maintainer', 'developer', 'admin'].indexOf(me.role) >= ['read-only', 'maintainer', 'developer', 'admin'].indexOf(role);

  /* Pages: {id, title, order, nav: bool, render(el, arg)} */
  function page(p) { pages.push(p); }

  let timer = null;
  function every(ms, fn) { timer = setInterval(fn, ms); }

  function route() {
    if (!me) return;
    if (timer) { clearInterval(timer); timer = null; }
    const [id, ...rest] = (location.hash.replace(/^#\/?/, '') || 'status').split('/');
    const p = pages.find((x) => x.id === id) || pages.find((x) => x.id === 'status');
    for (const a of document.querySelectorAll('#nav a')) a.classList.toggle('active', a.dataset.page === p.id);
    banner('');
    const el = $('page');
    el.replaceChildren(h('h2', {}, p.title));
    p.render(el, rest.map(decodeURIComponent).join('/'));
  }

  function showLogin(msg) {
    me = null;
    $('app').hidden = true;
    $('login').hidden = false;
    $('login-error').textContent = msg || '';
  }

  function showApp(who) {
    me = who;
    csrf = who.csrf;
    $('who').textContent = who.username + ' (' + who.role + ')';
    $('login').hidden = true;
    $('app').hidden = false;
    route();
  }

  async function start() {
    pages.sort((a, b) => a.order - b.order);
    $('nav').replaceChildren(...pages.filter((p) => p.nav !== false).map((p) =>
      h('li', {}, h('a', { href: '#/' + p.id, 'data-page': p.id }, p.title))));
    $('login-form').addEventListener('submit', async (e) => {
      e.preventDefault();
      try {
        showApp(await post('login', { username: $('login-username').value, password: $('login-password').value }));
        $('login-password').value = '';
      } catch (err) { $('login-error').textContent = err.message; }
    });
    $('logout').onclick = async () => { try { await post('logout'); } catch (e) { /* ended anyway */ } showLogin(''); };
    window.addEventListener('hashchange', route);
    try { showApp(await get('me')); } catch (e) { showLogin(''); }
  }

  return { h, api, get, post, write, confirm, table, page, start, banner, time, json, kv, fmt, can, every,
    get me() { return me; } };
})();
document.addEventListener('DOMContentLoaded', () => KC.start());
