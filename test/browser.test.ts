// End to end in a real browser (Debian's Chromium, driven by playwright-core): a user opens their server's address,
// logs in on the form, watches it start, lands in the real Jupyter Notebook UI, creates a notebook in
// notebooks/remote, runs a cell over the kernel WebSocket (cookie-authenticated, through the gateway) and saves it
// — and the file is on the share. When an admin drains the instance, the notebook page shows the notice. And the
// home page: start, open, stop a server, register an SSH key.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT, TestPool, rand } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const skipReason = !existsSync(CHROMIUM)
  ? `needs Debian chromium at ${CHROMIUM} (bash scripts/bootstrap.sh --test installs it)`
  : !existsSync('/usr/bin/jupyter-notebook') ? 'needs Debian jupyter-notebook (bash scripts/bootstrap.sh installs it)' : '';
if (skipReason) console.warn(`test/browser.test.ts skipped: ${skipReason}`);

describe.skipIf(skipReason !== '')('a user in a real browser', () => {
  const pool = new TestPool({ instances: 1 });
  const alice = `w${rand()}`;
  const admin = `r${rand()}`;
  let adminToken = '';
  let browser: Browser;

  beforeAll(async () => {
    await pool.start();
    await pool.addUser(alice, 'alice-browser-pass');
    adminToken = await pool.addUser(admin, 'admin-pass', true);
    // As root (CI) Chromium needs --no-sandbox; it only ever loads the pool's loopback address.
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await pool.cleanup();
  }, 90_000);

  it('starts and stops a server from the home page and registers an SSH key there', async () => {
    const bob = `v${rand()}`;
    await pool.addUser(bob, 'bob-browser-pass');
    const context = await browser.newContext();
    const page = await context.newPage();
    const loads = watchLoads(page);
    await page.goto(`${pool.url}/hub/home`);
    expect(new URL(page.url()).pathname).toBe('/hub/login');
    await page.fill('input[name=username]', bob);
    await page.fill('input[name=password]', 'bob-browser-pass');
    await page.click('button[type=submit]');
    await page.waitForURL('**/hub/home');
    await expect(page.locator('#status').textContent()).resolves.toContain('Status: stopped');

    // Start: the progress page, then Jupyter; back home, the server runs and can be opened.
    await page.click('button[value=start]');
    await page.waitForURL(`**/user/${bob}/tree`, { timeout: 60_000 });
    await loads.listShown(30_000);
    await page.goto(`${pool.url}/hub/home`);
    await expect(page.locator('#status').textContent()).resolves.toMatch(/Status: running on instance i-/);
    expect(await page.getAttribute('a:has-text("Open my server")', 'href')).toBe(`/user/${bob}/tree`);

    // An SSH key pasted into the form is listed by its fingerprint; a line that is not a key is refused.
    const keyDir = mkdtempSync(join(tmpdir(), 'dspool-browser-key-'));
    try {
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'bob@laptop', '-f', join(keyDir, 'id')]);
      const fingerprint = execFileSync('ssh-keygen', ['-l', '-f', join(keyDir, 'id.pub')], { encoding: 'utf8' }).split(' ')[1] ?? '';
      await page.fill('textarea[name=key]', readFileSync(join(keyDir, 'id.pub'), 'utf8'));
      await page.click('button:has-text("Add key")');
      await expect(page.locator('#ssh ~ ul').textContent()).resolves.toContain(fingerprint);
      await page.fill('textarea[name=key]', 'not a key');
      await page.click('button:has-text("Add key")');
      await expect(page.locator('[role=alert]').textContent()).resolves.toMatch(/key/i);
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }

    // Stop: the page says so and the API agrees.
    await page.goto(`${pool.url}/hub/home`);
    await page.click('button[value=stop]');
    await page.waitForURL('**/hub/home');
    await expect(page.locator('#status').textContent()).resolves.toContain('Status: stopped');
    const model = (await (await pool.fetch(`/hub/api/users/${bob}`, { token: adminToken })).json()) as { servers: Record<string, unknown> };
    expect(model.servers).toEqual({});
    await context.close();
  }, 150_000);

  it('shows admins the instances, the pool size chart beside the scaling events, and the queue; others get 403', async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${pool.url}/hub/admin`);
    await page.fill('input[name=username]', admin);
    await page.fill('input[name=password]', 'admin-pass');
    await page.click('button[type=submit]');
    await page.waitForURL('**/hub/admin');
    const [instance] = (await (await pool.fetch('/hub/api/instances', { token: adminToken })).json()) as Array<{ id: string; state: string }>;
    const row = page.locator('#instances tbody tr').first();
    await expect(row.textContent()).resolves.toContain(instance?.id ?? 'no instance');
    await expect(row.textContent()).resolves.toMatch(/ready.*load [\d.]+ per core/s);
    // The chart is inline SVG (nothing loaded from elsewhere) with the pool's line, next to the events it explains.
    await expect(page.locator('svg#pool-chart path.instances').getAttribute('d')).resolves.toMatch(/^M[\d.]+,[\d.]+/);
    await expect(page.locator('svg#pool-chart').getAttribute('aria-label')).resolves.toMatch(/now 1 instances, 1 ready/);
    await expect(page.locator('#scaling-events').textContent()).resolves.toContain(`instance.created`);
    await expect(page.locator('#queue').textContent()).resolves.toContain('Nobody is waiting');
    expect(await page.locator('script[src*="//"], link[href*="//"], img[src*="//"]').count()).toBe(0);
    mkdirSync(join(ROOT, 'test', 'screenshots'), { recursive: true });
    await page.screenshot({ path: join(ROOT, 'test', 'screenshots', 'admin.png'), fullPage: true });

    // A user who is not an admin gets a 403 page, with no pool details on it.
    const other = await browser.newContext();
    const userPage = await other.newPage();
    await userPage.goto(`${pool.url}/hub/login?next=/hub/admin`);
    await userPage.fill('input[name=username]', alice);
    await userPage.fill('input[name=password]', 'alice-browser-pass');
    const [answer] = await Promise.all([userPage.waitForResponse((r) => r.url().endsWith('/hub/admin')), userPage.click('button[type=submit]')]);
    expect(answer.status()).toBe(403);
    await expect(userPage.locator('[role=alert]').textContent()).resolves.toContain('for admins only');
    expect(await userPage.content()).not.toContain(instance?.id ?? 'no instance');
    await other.close();
    await context.close();
  }, 90_000);

  it('logs in, sees the server start, runs a cell in a new notebook and saves it to the share', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const loads = watchLoads(page);
    const seen: string[] = [];
    page.on('framenavigated', (frame) => {
      if (frame === page.mainFrame()) seen.push(new URL(frame.url()).pathname);
    });

    // The user's address sends an anonymous browser to the login form, and back after it.
    await page.goto(`${pool.url}/user/${alice}/tree/notebooks/remote`);
    expect(new URL(page.url()).pathname).toBe('/hub/login');
    await page.fill('input[name=username]', alice);
    await page.fill('input[name=password]', 'wrong-password');
    await page.click('button[type=submit]');
    await expect(page.locator('[role=alert]').textContent()).resolves.toContain('Invalid username or password');
    await page.fill('input[name=password]', 'alice-browser-pass');
    await page.click('button[type=submit]');

    // No server yet: the login (a same-site POST with its CSRF token) starts it, the progress page follows it,
    // then the browser lands in Jupyter's file list.
    await page.waitForURL(`**/user/${alice}/tree/notebooks/remote`, { timeout: 60_000 });
    expect(seen).toContain(`/hub/user/${alice}/tree/notebooks/remote`);
    await loads.listShown(30_000);
    expect(await page.content()).not.toMatch(/[?&]token=[0-9a-f]{16}/);

    // New → Python 3 opens the notebook in a new tab.
    await page.click('#new-dropdown-button');
    const [notebook] = await Promise.all([context.waitForEvent('page'), page.click('#kernel-python3 a')]);
    await runCell(notebook, 'print(6 * 7)', '42');
    await notebook.keyboard.press('Escape');
    await notebook.keyboard.press('Control+S');

    // Saved through the gateway into notebooks/remote, i.e. on the share.
    const dir = join(pool.share, 'users', alice, 'notebooks');
    const deadline = Date.now() + 15_000;
    let saved = '';
    while (Date.now() < deadline) {
      const file = existsSync(dir) ? readdirSync(dir).find((f) => f.endsWith('.ipynb')) : undefined;
      saved = file ? readFileSync(join(dir, file), 'utf8') : '';
      if (saved.includes('print(6 * 7)') && saved.includes('42')) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    const cells = (JSON.parse(saved) as { cells: Array<{ source: string | string[]; outputs?: Array<{ text?: string | string[] }> }> }).cells;
    expect([cells[0]?.source].flat().join('')).toBe('print(6 * 7)');
    expect([cells[0]?.outputs?.[0]?.text].flat().join('')).toBe('42\n');

    // An admin drains the instance: the notebook, reloaded, shows the hub's notice on top of Jupyter's own page.
    const [instance] = (await (await pool.fetch('/hub/api/instances', { token: adminToken })).json()) as Array<{ id: string }>;
    const drained = await pool.fetch(`/hub/api/instances/${instance?.id ?? ''}/drain`, {
      method: 'POST', token: adminToken, body: JSON.stringify({ deadline: '30m' }), headers: { 'content-type': 'application/json' },
    });
    expect(drained.status).toBe(202);
    await notebook.reload();
    await expect(notebook.locator('#dspool-notice').textContent({ timeout: 30_000 })).resolves.toMatch(/being drained for maintenance.*Save your work/);
    await context.close();
  }, 150_000);
});

describe.skipIf(skipReason !== '')('a newcomer\'s first visit in a real browser', () => {
  const pool = new TestPool({ instances: 1 });
  const carol = `c${rand()}`;
  const dave = `d${rand()}`;
  const shots = join(tmpdir(), 'dspool-browser-screenshots');
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(shots, { recursive: true });
    await pool.start();
    await pool.addUser(carol, 'carol-browser-pass');
    await pool.addUser(dave, 'dave-browser-pass');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await pool.cleanup();
  }, 90_000);

  it('logs in on a styled form and lands in Jupyter with the server started at once, no click needed', async () => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    const loads = watchLoads(page);
    // Every page the browser asked for, redirects included.
    const seen: string[] = [];
    page.on('request', (request) => {
      if (request.isNavigationRequest() && request.frame() === page.mainFrame()) seen.push(new URL(request.url()).pathname);
    });
    await page.goto(`${pool.url}/hub/login`);
    // The pool's stylesheet is served by the hub (no CDN) and applied: inputs and button are one width.
    const css = await pool.fetch('/hub/static/dspool.css');
    expect(css.status).toBe(200);
    expect(css.headers.get('content-type')).toMatch(/^text\/css/);
    expect(await page.evaluate('getComputedStyle(document.body).fontFamily')).toMatch(/Helvetica/);
    const widths = await Promise.all(['input[name=username]', 'input[name=password]', 'button[type=submit]'].map(async (sel) => (await page.locator(sel).boundingBox())?.width ?? 0));
    expect(widths[0]).toBeGreaterThan(200);
    expect(new Set(widths.map((w) => Math.round(w))).size, `widths ${widths.join(', ')}`).toBe(1);
    await page.screenshot({ path: join(shots, 'login.png') });

    await page.fill('input[name=username]', carol);
    await page.fill('input[name=password]', 'carol-browser-pass');
    await page.click('button[type=submit]');
    await page.waitForURL(`**/user/${carol}/tree`, { timeout: 90_000 });
    await loads.listShown(30_000);
    // Login → /hub/spawn → the start-with-progress page → Jupyter; never the home page's "Start" button.
    expect(seen.slice(seen.indexOf('/hub/spawn'))).toEqual(['/hub/spawn', `/hub/user/${carol}/tree`, `/user/${carol}/tree`]);
    expect(seen).not.toContain('/hub/home');

    // Jupyter's page links back to the pool's home page.
    await page.waitForSelector('#dspool-home', { timeout: 15_000 });
    expect(await page.getAttribute('#dspool-home', 'href')).toBe('/hub/home');
    await page.screenshot({ path: join(shots, 'jupyter-tree.png') });
    await page.click('#dspool-home');
    await page.waitForURL('**/hub/home');
    await expect(page.locator('#status').textContent()).resolves.toMatch(/Status: running on instance i-/);
    await page.screenshot({ path: join(shots, 'home.png'), fullPage: true });
    await context.close();
  }, 180_000);

  it('shows another user\'s server as a page saying why, and keeps JSON for API clients', async () => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    await page.goto(`${pool.url}/hub/login?next=${encodeURIComponent('/hub/home')}`);
    await page.fill('input[name=username]', dave);
    await page.fill('input[name=password]', 'dave-browser-pass');
    await page.click('button[type=submit]');
    await page.waitForURL('**/hub/home');
    const response = await page.goto(`${pool.url}/user/${carol}/tree`);
    expect(response?.status()).toBe(403);
    expect(response?.headers()['content-type']).toMatch(/^text\/html/);
    await expect(page.locator('h1').textContent()).resolves.toBe('Not your server');
    await expect(page.locator('body').textContent()).resolves.toContain(`You are logged in as ${dave}: only ${carol} (or an admin) may open ${carol}'s server.`);
    expect(await page.evaluate("getComputedStyle(document.querySelector('.alert')).backgroundColor")).toBe('rgb(242, 222, 222)');
    await page.screenshot({ path: join(shots, 'forbidden.png') });
    const cookie = (await context.cookies()).map((c) => `${c.name}=${c.value}`).join('; ');
    const api = await pool.fetch(`/user/${carol}/api/contents`, { cookie });
    expect(api.status).toBe(403);
    expect(await api.json()).toEqual({ status: 403, message: `${dave} may not access /user/${carol}/ with this credential (it needs access:servers!user=${carol})` });
    await context.close();
  }, 120_000);

  it('ends the pool login with Jupyter\'s own Logout, so the server\'s address asks for a login again', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${pool.url}/user/${carol}/tree`);
    await page.fill('input[name=username]', carol);
    await page.fill('input[name=password]', 'carol-browser-pass');
    await page.click('button[type=submit]');
    await page.waitForURL(`**/user/${carol}/tree`, { timeout: 60_000 });
    await page.waitForSelector('#logout', { timeout: 30_000 });
    await page.click('#logout');
    // The pool's logout takes a POST (a cross-site link must not end a login): one click on its button.
    await page.waitForURL('**/hub/logout');
    await page.click('button[type=submit]');
    await page.waitForURL('**/hub/login**');
    expect((await context.cookies()).map((c) => c.name)).not.toContain('dspool-session');
    // Jupyter's own login URL and the tree now send the browser to the pool's login, not back in.
    for (const path of [`/user/${carol}/login`, `/user/${carol}/tree`]) {
      await page.goto(`${pool.url}${path}`);
      expect(new URL(page.url()).pathname, path).toBe('/hub/login');
    }
    // The server itself keeps running (logging out is not stopping).
    const token = (await pool.cli(['token', carol])).stdout.trim();
    const model = (await (await pool.fetch(`/hub/api/users/${carol}`, { token })).json()) as { servers: Record<string, { ready: boolean }> };
    expect(model.servers['']?.ready).toBe(true);
    await context.close();
  }, 120_000);
});

describe.skipIf(skipReason !== '')('a pool with profiles in a real browser', () => {
  const pool = new TestPool({
    instances: 1,
    extraYaml: ['pool:', '  instances: 1', '  profiles: { small: { cpu: 0.1, description: a small one }, other: { cpu: 0.2 } }'].join('\n'),
  });
  const erin = `e${rand()}`;
  let browser: Browser;

  beforeAll(async () => {
    await pool.start();
    await pool.addUser(erin, 'erin-browser-pass');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await pool.cleanup();
  }, 90_000);

  it('shows a profile picker after login, then starts the chosen profile with progress and lands in Jupyter', async () => {
    const context = await browser.newContext({ viewport: { width: 1000, height: 700 } });
    const page = await context.newPage();
    const loads = watchLoads(page);
    await page.goto(`${pool.url}/hub/login`);
    await page.fill('input[name=username]', erin);
    await page.fill('input[name=password]', 'erin-browser-pass');
    await page.click('button[type=submit]');
    await page.waitForURL('**/hub/spawn');
    const options = await page.locator('select[name=profile] option').allTextContents();
    expect(options).toEqual(['small — a small one', 'other']);
    await page.screenshot({ path: join(tmpdir(), 'dspool-browser-screenshots', 'picker.png') });
    await page.selectOption('select[name=profile]', 'other');
    await page.click('button[value=start]');
    await page.waitForURL(`**/user/${erin}/tree`, { timeout: 90_000 });
    await loads.listShown(30_000);
    // The placement used the profile she picked (the audit trail, read with the pool's admin token).
    const adminToken = readFileSync(join(pool.dir, 'state', 'secrets', 'admin-token'), 'utf8').trim();
    const events = (await (await pool.fetch('/hub/api/events?limit=100', { token: adminToken })).json()) as Array<{ kind: string; user: string | null; data: { profile?: string } }>;
    expect(events.find((e) => e.kind === 'session.placed' && e.user === erin)?.data.profile).toBe('other');
    await page.goto(`${pool.url}/hub/home`);
    await expect(page.locator('#status').textContent()).resolves.toMatch(/Status: running/);
    await context.close();
  }, 180_000);
});

/**
 * Follows what a page loads, so that a Jupyter page that never shows (its scripts reveal it) says why: the loads still
 * pending, the ones that failed and the error statuses.
 */
function watchLoads(page: Page): { listShown(timeoutMs: number): Promise<void> } {
  const pending = new Map<object, string>();
  const bad: string[] = [];
  const label = (url: string): string => new URL(url).pathname;
  page.on('request', (r) => pending.set(r, `${r.method()} ${label(r.url())} (since ${new Date().toISOString().slice(11, 23)})`));
  page.on('requestfinished', (r) => pending.delete(r));
  page.on('requestfailed', (r) => {
    pending.delete(r);
    bad.push(`${r.method()} ${label(r.url())}: ${r.failure()?.errorText ?? 'failed'}`);
  });
  page.on('response', (r) => {
    if (r.status() >= 400) bad.push(`${r.request().method()} ${label(r.url())}: HTTP ${r.status()}`);
  });
  page.on('console', (m) => {
    if (m.type() === 'error') bad.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => bad.push(`page error: ${e.message}`));
  return {
    async listShown(timeoutMs) {
      try {
        await page.waitForSelector('#notebook_list', { timeout: timeoutMs });
      } catch (error) {
        const at = new Date().toISOString().slice(11, 23);
        throw new Error(`${(error as Error).message}\nat ${at}, pending: ${[...pending.values()].join('; ') || 'none'}\nfailed: ${bad.join('; ') || 'none'}`);
      }
    },
  };
}

/** Types `code` into the notebook's first cell, runs it with Shift+Enter and waits for `expected` in its output. */
async function runCell(notebook: Page, code: string, expected: string): Promise<void> {
  // The kernel is up once Jupyter shows it idle (its WebSocket runs through the gateway with the login cookie).
  await notebook.waitForSelector('#kernel_indicator_icon.kernel_idle_icon', { timeout: 60_000 });
  await notebook.click('.cell .CodeMirror');
  await notebook.keyboard.type(code);
  await notebook.keyboard.press('Shift+Enter');
  await notebook.locator('.output_subarea').filter({ hasText: new RegExp(`^\\s*${expected}\\s*$`) }).first().waitFor({ timeout: 30_000 });
}

describe.skipIf(skipReason !== '')('an idle server in a real browser', () => {
  // Short enough for a test: the warning comes after 5 s of no work, and pages poll every 10 s.
  const pool = new TestPool({ instances: 1, poolYaml: 'cull: { idleTimeout: 30s, warnBefore: 25s, saveTimeout: 6s, interval: 500ms }' });
  const carol = `k${rand()}`;
  let browser: Browser;

  beforeAll(async () => {
    await pool.start();
    await pool.addUser(carol, 'carol-browser-pass');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await pool.cleanup();
  }, 90_000);

  it('warns on the open notebook, keeps the server on "Keep it running", saves the notebook before the stop and says why at the next login', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const loads = watchLoads(page);
    await page.goto(`${pool.url}/user/${carol}/tree`);
    await page.fill('input[name=username]', carol);
    await page.fill('input[name=password]', 'carol-browser-pass');
    await page.click('button[type=submit]');
    await loads.listShown(60_000);
    await page.click('#new-dropdown-button');
    const [notebook] = await Promise.all([context.waitForEvent('page'), page.click('#kernel-python3 a')]);
    await notebook.waitForSelector('#kernel_indicator_icon.kernel_idle_icon', { timeout: 60_000 });

    // Idle with the tabs open: the banner says when the server stops, with a button that keeps it.
    const banner = notebook.locator('#dspool-notice');
    await expect(banner.textContent({ timeout: 40_000 })).resolves.toMatch(/has done no work since .* will be stopped at/);
    await notebook.click('#dspool-extend');
    await banner.waitFor({ state: 'detached', timeout: 20_000 });
    const kept = (await (await pool.fetch(`/hub/api/users/${carol}`, { cookie: await pool.login(carol, 'carol-browser-pass') })).json()) as { servers: Record<string, { ready: boolean; cull_at: string | null }> };
    expect(kept.servers['']).toMatchObject({ ready: true, cull_at: null });
    await context.close();

    // A second server, left alone with a cell typed but never saved: the stop saves it first.
    const second = await browser.newContext();
    const login = await second.newPage();
    const loginLoads = watchLoads(login);
    await pool.fetch(`/hub/api/users/${carol}/server`, { method: 'DELETE', cookie: await pool.login(carol, 'carol-browser-pass'), headers: { origin: pool.url } });
    await login.goto(`${pool.url}/user/${carol}/tree`);
    await login.fill('input[name=username]', carol);
    await login.fill('input[name=password]', 'carol-browser-pass');
    await login.click('button[type=submit]');
    await loginLoads.listShown(60_000);
    await login.click('#new-dropdown-button');
    const [unsaved] = await Promise.all([second.waitForEvent('page'), login.click('#kernel-python3 a')]);
    await unsaved.waitForSelector('#kernel_indicator_icon.kernel_idle_icon', { timeout: 60_000 });
    await unsaved.click('.cell .CodeMirror');
    await unsaved.keyboard.type('typed_but_never_saved = 1');
    const name = decodeURIComponent(new URL(unsaved.url()).pathname.split('/').pop() ?? '');
    const file = join(pool.share, 'users', carol, 'home', name);
    expect(readFileSync(file, 'utf8')).not.toContain('typed_but_never_saved');
    await expect(unsaved.locator('#dspool-notice').textContent({ timeout: 40_000 })).resolves.toMatch(/will be stopped at/);
    // The stop: the page saves on the hub's request, then the server goes.
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && !readFileSync(file, 'utf8').includes('typed_but_never_saved')) await new Promise((r) => setTimeout(r, 250));
    expect(readFileSync(file, 'utf8')).toContain('typed_but_never_saved = 1');
    const cookie = await pool.login(carol, 'carol-browser-pass');
    while (Date.now() < deadline) {
      const model = (await (await pool.fetch(`/hub/api/users/${carol}`, { cookie })).json()) as { servers: Record<string, unknown> };
      if (Object.keys(model.servers).length === 0) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    await second.close();

    // The next login lands on the home page, which says why the server stopped.
    const third = await browser.newContext();
    const home = await third.newPage();
    await home.goto(`${pool.url}/hub/home`);
    await home.fill('input[name=username]', carol);
    await home.fill('input[name=password]', 'carol-browser-pass');
    await home.click('button[type=submit]');
    await home.waitForURL('**/hub/home');
    await expect(home.locator('#last-stop').textContent()).resolves.toMatch(/stopped because it did no work for 30 s/);
    await third.close();
  }, 240_000);
});
