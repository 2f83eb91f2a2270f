// The admin console in a real browser: headless Chromium (Debian's package)
// driven by playwright-core, against the server tests/e2e/test_console.c
// started. That test prepares the world (players, a storage object, an
// asteroids match, a read-only console user), runs this script, and checks
// afterwards what only the wire can tell (the banned player disconnected, the
// edited object read back). Phases: "main" (everything below) and "expired"
// (the same browser state after the test expired the sessions in Postgres).
// Screenshots go to KAOS_CONSOLE_SHOTS when it is set (docs/console.md).
import { chromium } from 'playwright-core';

const env = process.env;
const base = env.KAOS_CONSOLE_URL;
const t = JSON.parse(env.KAOS_CONSOLE_TEST);
const phase = env.KAOS_CONSOLE_PHASE || 'main';
const shots = env.KAOS_CONSOLE_SHOTS || '';
const TIMEOUT = 15000;

function check(cond, what) {
  if (!cond) throw new Error('check failed: ' + what);
  console.log('ok - ' + what);
}

async function shot(page, name) {
  if (shots) await page.screenshot({ path: `${shots}/${name}.png`, fullPage: false });
}

async function confirmDialog(page) {
  await page.locator('#confirm').waitFor({ state: 'visible', timeout: TIMEOUT });
  await page.click('#confirm-ok');
}

async function login(page, user, password) {
  await page.goto(base + '/');
  await page.locator('#login-form').waitFor({ state: 'visible', timeout: TIMEOUT });
  await page.fill('#login-username', user);
  await page.fill('#login-password', password);
  await page.click('#login-submit');
}

async function main(browser) {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);

  // A wrong password is refused, and says so.
  await login(page, 'admin', 'not-the-password');
  await page.locator('#login-error', { hasText: 'wrong username or password' }).waitFor();
  check(await page.locator('#app').isHidden(), 'a wrong password is refused');
  await shot(page, 'login');

  await login(page, 'admin', t.admin_password);
  await page.locator('#app').waitFor({ state: 'visible' });
  check(true, 'the admin logs in');

  // Status: live counters; the two players are sessions.
  await page.locator('[data-metric="sessions"] .v').waitFor();
  await page.waitForFunction(() => Number(document.querySelector('[data-metric="sessions"] .v')?.textContent) >= 2);
  // The charts start from the server's history, not from the page's first sample.
  const points = Number(await page.locator('[data-metric="sessions"]').getAttribute('data-points'));
  check(points >= 2, `the sessions chart starts from the server's history (${points} points at once)`);
  await page.waitForTimeout(2500); // a second sample: rates and charts
  check(true, 'status shows the live sessions');
  await page.locator('[data-metric="cluster"] .v', { hasText: 'single node' }).waitFor();
  check(true, 'status says this server is a single node (no cluster bus)');
  await shot(page, 'status');

  // Accounts: find the SDK player, see its storage object and live session.
  await page.goto(base + '/#/accounts');
  await page.fill('input[type="search"]', t.username);
  await page.press('input[type="search"]', 'Enter');
  await page.locator('tr.clickable', { hasText: t.username }).click();
  await page.locator('#account-name', { hasText: t.username }).waitFor();
  check(true, 'the SDK player is found by username');
  await page.click('.tabs button:text-is("Storage")');
  await page.locator('td', { hasText: t.object_key }).waitFor();
  check(true, "the player's storage object is listed");
  await page.click('.tabs button:text-is("Live sessions")');
  await page.locator('#live-sessions', { hasText: '1 live connection' }).waitFor();
  check(true, "the player's live session is shown");
  await page.click('.tabs button:text-is("Profile")');
  await shot(page, 'account');

  // Storage: edit the other player's object with its version.
  await page.goto(`${base}/#/storage/${t.edit_collection}/${t.edit_key}/${t.edit_user_id}`);
  await page.locator('#storage-value').waitFor();
  check((await page.inputValue('#storage-value')).includes('"hp"'), 'the object to edit is shown');
  await page.fill('#storage-value', JSON.stringify({ hp: 99, edited: 'console' }, null, 2));
  await page.click('#storage-save');
  await confirmDialog(page);
  await page.locator('.banner.ok').waitFor();
  check(true, 'the edit is saved');
  await shot(page, 'storage');

  // Matches: the running asteroids match.
  await page.goto(base + '/#/matches');
  await page.locator('td', { hasText: 'asteroids' }).first().waitFor();
  check(true, 'the asteroids match is listed');
  await shot(page, 'matches');
  await page.locator('tr.clickable', { hasText: 'asteroids' }).first().click();
  await page.locator('td', { hasText: t.edit_user_id }).waitFor();
  check(true, "a match's page lists its presences (the player in it)");
  await shot(page, 'match');

  // Matchmaker: the player's ticket waits, with its query and widening.
  await page.goto(base + '/#/matchmaker');
  await page.locator('td', { hasText: '+mode:console-nobody' }).waitFor();
  check((await page.textContent('#page')).includes('skill +'), 'the matchmaker page shows the waiting ticket and its widening');
  await page.locator('dd').first().waitFor();
  await shot(page, 'matchmaker');

  // Parties: the player's party, its label and leader.
  await page.goto(base + '/#/parties');
  const partyRow = page.locator('tr', { hasText: 'console' }).filter({ hasText: t.username });
  await partyRow.first().waitFor();
  check(true, "the parties page lists the player's party with its leader");
  await page.fill('input[type="search"]', '+mode:console');
  await page.press('input[type="search"]', 'Enter');
  await partyRow.first().waitFor();
  check(true, 'the parties page finds it by label query');
  await shot(page, 'parties');

  // Leaderboards: the asteroids example's board, and its (maybe empty) records.
  await page.goto(base + '/#/leaderboards');
  await page.locator('tr.clickable', { hasText: 'asteroids_highscores' }).click();
  await page.locator('code', { hasText: 'asteroids_highscores' }).waitFor();
  await page.locator('th', { hasText: 'Rank' }).waitFor();
  check(true, "the asteroids example's leaderboard is listed with its records");

  // Chat: the room's stored message, removed (the room is told).
  await page.goto(base + '/#/chat');
  await page.locator('tr.clickable', { hasText: 'lobby' }).click();
  const msgRow = page.locator('tr', { hasText: 'hello console' });
  await msgRow.waitFor();
  check(true, "the room's stored message is shown");
  await shot(page, 'chat');
  await msgRow.locator('button', { hasText: 'Remove' }).click();
  await confirmDialog(page);
  await page.locator('.banner.ok').waitFor();
  check(true, 'the message is removed');

  // Runtime and configuration pages render (secrets masked).
  await page.goto(base + '/#/runtime');
  await page.locator('dl.kv').waitFor();
  await page.locator('dd', { hasText: 'asteroids_find_or_create' }).waitFor();
  check((await page.textContent('dl.kv')).includes('asteroids'), 'the runtime lists its modules, RPCs and match handlers');
  // The API explorer calls an RPC as the other player.
  await page.fill('#rpc-form input[name="id"]', 'echo');
  await page.fill('#rpc-form input[name="user_id"]', t.edit_user_id);
  await page.fill('#rpc-form textarea[name="payload"]', 'from the console');
  await page.click('#rpc-form button[type="submit"]');
  await confirmDialog(page);
  await page.locator('#rpc-result', { hasText: t.edit_user_id }).waitFor();
  check((await page.textContent('#rpc-result')).includes('from the console'), 'the API explorer calls an RPC as a chosen user');
  // The picture names the module directory as configured, not this machine's path.
  await page.evaluate(() => {
    const dt = [...document.querySelectorAll('dl.kv dt')].find((d) => d.textContent === 'Module path');
    if (dt) dt.nextElementSibling.textContent = 'lua-examples';
  });
  await shot(page, 'runtime');
  await page.goto(base + '/#/config');
  await page.locator('td', { hasText: 'console_admin_password' }).waitFor();
  const row = page.locator('tr', { has: page.locator('td:text-is("console_admin_password")') });
  check((await row.textContent()).includes('********'), 'secrets are masked');

  // Ban the player (the test then sees its client disconnected).
  await page.goto(`${base}/#/account/${t.user_id}`);
  await page.click('#ban');
  await confirmDialog(page);
  await page.locator('#account-banned').waitFor();
  check(true, 'the player is banned');

  // The audit log has both writes.
  await page.goto(base + '/#/audit');
  await page.locator('td', { hasText: 'account/ban' }).first().waitFor();
  await page.locator('td', { hasText: 'storage/write' }).first().waitFor();
  check(true, 'the audit log shows the writes');
  await shot(page, 'audit');

  // Console users: the admin adds one from the page.
  await page.goto(base + '/#/users');
  await page.fill('#user-form input[name="username"]', 'helper');
  await page.fill('#user-form input[name="password"]', 'helper-password-1');
  await page.selectOption('#user-form select[name="role"]', 'developer');
  await page.click('#user-form button[type="submit"]');
  await confirmDialog(page);
  await page.locator('td', { hasText: 'helper' }).waitFor();
  check(true, 'the admin adds a console user');

  // A write without the CSRF token is refused (cookie sent, header not).
  const noCsrf = await page.request.post(base + '/v2/console/account/unban', { data: { id: t.user_id } });
  check(noCsrf.status() === 403, 'a write without the CSRF token is refused (403)');

  // A read-only user sees no write buttons and its writes are refused.
  const ro = await browser.newContext();
  const rp = await ro.newPage();
  rp.setDefaultTimeout(TIMEOUT);
  await login(rp, t.viewer, t.viewer_password);
  await rp.locator('#app').waitFor({ state: 'visible' });
  await rp.goto(`${base}/#/account/${t.user_id}`);
  await rp.locator('#account-name').waitFor();
  check(await rp.locator('#unban').count() === 0, 'a read-only user gets no unban button');
  const me = await (await rp.request.get(base + '/v2/console/me')).json();
  const refused = await rp.request.post(base + '/v2/console/account/unban',
    { data: { id: t.user_id }, headers: { 'X-Kaos-Csrf': me.csrf } });
  check(refused.status() === 403, "a read-only user's write is refused (403)");
  const users = await rp.request.get(base + '/v2/console/users');
  check(users.status() === 403, 'a read-only user may not list console users (403)');
  await ro.close();

  await ctx.storageState({ path: t.state_file });
  await ctx.close();
}

async function expired(browser) {
  const ctx = await browser.newContext({ storageState: t.state_file });
  const page = await ctx.newPage();
  page.setDefaultTimeout(TIMEOUT);
  const r = await page.request.get(base + '/v2/console/me');
  check(r.status() === 401, 'an expired session is refused (401)');
  await page.goto(base + '/');
  await page.locator('#login-form').waitFor({ state: 'visible' });
  check(true, 'an expired session shows the login form');
  await ctx.close();
}

const browser = await chromium.launch({
  executablePath: env.KAOS_CHROMIUM || '/usr/bin/chromium',
  args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
});
const watchdog = setTimeout(() => { console.error('browser test timed out'); process.exit(3); }, 120000);
try {
  await (phase === 'expired' ? expired(browser) : main(browser));
} catch (e) {
  console.error(e);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  await browser.close();
}
