// Issue 14, items 6, 8 and 9, tried as an attacker would against a real pool (`dspool up`, real Jupyter, the real
// OpenSSH client, Debian's Chromium): users alice and mallory and an admin. Login guessing must never lock the
// real user out from their own address nor stall the hub; `next` must never leave the site; login, logout and
// starting a server must not be triggerable cross-site; and with `gateway.userHost` a user's server must never
// hold the hub's login cookie (without it, an admin is warned before opening another user's server).
import { chmodSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPool, rand, run } from './harness.js';

const CHROMIUM = '/usr/bin/chromium';
const skipReason = !existsSync('/usr/bin/jupyter-notebook')
  ? 'needs Debian jupyter-notebook (bash scripts/bootstrap.sh installs it)'
  : !existsSync('/usr/bin/ssh') ? 'needs the OpenSSH client (bash scripts/bootstrap.sh --test installs it)' : '';
if (skipReason) console.warn(`test/isolation-web.test.ts skipped: ${skipReason}`);
const noBrowser = existsSync(CHROMIUM) ? '' : `needs Debian chromium at ${CHROMIUM} (bash scripts/bootstrap.sh --test installs it)`;
if (noBrowser) console.warn(`test/isolation-web.test.ts: browser checks skipped: ${noBrowser}`);

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  ms: number;
}

/** One HTTP request to the pool from a chosen loopback address (`from`), as a client on that address would. */
function send(
  url: string,
  options: { from?: string; method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<Answer> {
  const target = new URL(url);
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: target.hostname, port: target.port, path: `${target.pathname}${target.search}`, method: options.method ?? 'GET',
        headers: options.headers, localAddress: options.from ?? '127.0.0.1', agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), ms: performance.now() - started }));
        res.on('error', reject);
      },
    );
    req.setTimeout(60_000, () => req.destroy(new Error(`no answer from ${url}`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** The `name=value` of a cookie set by an answer, or `undefined`. */
function setCookie(answer: Answer, name: string): string | undefined {
  return (answer.headers['set-cookie'] ?? []).map((line) => line.split(';')[0] ?? '').find((pair) => pair.startsWith(`${name}=`));
}

const FORM = { 'content-type': 'application/x-www-form-urlencoded' };

/** Waits until the page is at `url` (a navigation another page started, which waitForURL can miss) and loaded. */
async function landOn(page: Page, url: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (page.url() !== url) {
    if (Date.now() > deadline) throw new Error(`still at ${page.url()}, not ${url}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  await page.waitForLoadState('load');
}

describe.skipIf(skipReason !== '')('web and login attacks against a real pool', () => {
  const pool = new TestPool({ instances: 1, ssh: true });
  const alice = `a${rand()}`;
  const mallory = `m${rand()}`;
  const admin = `r${rand()}`;
  let aliceToken = '';
  let adminToken = '';
  let askpass = '';
  let askDir = '';
  let browser: Browser | undefined;

  /** The login form's CSRF token and the cookie it is bound to, fetched from `from`. */
  async function loginForm(from = '127.0.0.1', next?: string): Promise<{ token: string; cookie: string }> {
    const page = await send(`${pool.url}/hub/login${next === undefined ? '' : `?next=${encodeURIComponent(next)}`}`, { from, headers: { accept: 'text/html' } });
    const token = /name="_xsrf" value="([^"]+)"/.exec(page.body)?.[1] ?? '';
    return { token, cookie: setCookie(page, 'dspool-csrf') ?? '' };
  }

  /** Posts the login form from `from` the way a browser on this site would. */
  async function login(user: string, password: string, from = '127.0.0.1', next?: string): Promise<Answer> {
    const form = await loginForm(from, next);
    return send(`${pool.url}/hub/login${next === undefined ? '' : `?next=${encodeURIComponent(next)}`}`, {
      from, method: 'POST', headers: { ...FORM, origin: pool.url, cookie: form.cookie }, body: new URLSearchParams({ username: user, password, _xsrf: form.token }).toString(),
    });
  }

  async function events(kind: string): Promise<Array<{ user: string | null; message: string; data: Record<string, unknown> }>> {
    const answer = await pool.fetch('/hub/api/events?limit=1000', { token: adminToken });
    const list = (await answer.json()) as Array<{ kind: string; user: string | null; message: string; data: Record<string, unknown> }>;
    return list.filter((e) => e.kind === kind);
  }

  const ssh = (user: string, password: string, from: string, command = 'whoami') =>
    run('ssh', [
      '-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=30',
      '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1',
      '-b', from, '-p', String(pool.sshPort), `${user}@127.0.0.1`, command,
    ], { env: { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DSPOOL_TEST_PASSWORD: password, DISPLAY: ':0' }, timeoutMs: 120_000 });

  beforeAll(async () => {
    askDir = mkdtempSync(join(tmpdir(), 'dspool-askpass-'));
    askpass = join(askDir, 'askpass.sh');
    writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$DSPOOL_TEST_PASSWORD"\n');
    chmodSync(askpass, 0o755);
    await pool.start();
    aliceToken = await pool.addUser(alice, 'alice-pass');
    await pool.addUser(mallory, 'mallory-pass');
    adminToken = await pool.addUser(admin, 'admin-pass', true);
    await pool.startServer(alice, aliceToken, 90_000);
    if (!noBrowser) browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await pool.cleanup();
    rmSync(askDir, { recursive: true, force: true });
  }, 120_000);

  it('sends `next` after login only to a path of this site, however it is spelled', async () => {
    const attempts = ['/%09/evil.example', '/\t/evil.example', '//evil.example', '/\\evil.example', '/\\/evil.example', '/.//evil.example',
      'https://evil.example/', '/%5C%5Cevil.example', '///evil.example', '/%2F%2Fevil.example', 'http:evil.example'];
    for (const next of attempts) {
      const answer = await login(alice, 'alice-pass', '127.0.0.1', next);
      expect(answer.status, next).toBe(302);
      const location = answer.headers.location ?? '';
      // A browser resolves the Location against the pool's address: it must stay there.
      expect(new URL(location, pool.url).origin, `${next} → ${location}`).toBe(pool.url);
      expect(location.startsWith('//'), location).toBe(false);
    }
    const good = await login(alice, 'alice-pass', '127.0.0.1', `/user/${alice}/tree?x=1`);
    expect(good.headers.location).toBe(`/user/${alice}/tree?x=1`);
  });

  it('logs nobody in from a cross-site login post: a foreign or https Origin, none, or no CSRF token', async () => {
    const form = await loginForm();
    const body = (token: string) => new URLSearchParams({ username: mallory, password: 'mallory-pass', _xsrf: token }).toString();
    const host = new URL(pool.url);
    for (const [what, headers] of [
      ['foreign origin', { origin: 'http://evil.example', cookie: form.cookie }],
      ['https origin for the http site', { origin: `https://${host.host}`, cookie: form.cookie }],
      ['same host, another port', { origin: `http://${host.hostname}:${Number(host.port) + 1}`, cookie: form.cookie }],
      ['no origin', { cookie: form.cookie }],
    ] as const) {
      const answer = await send(`${pool.url}/hub/login`, { method: 'POST', headers: { ...FORM, ...headers }, body: body(form.token) });
      expect(answer.status, what).toBe(403);
      expect(setCookie(answer, 'dspool-session'), what).toBeUndefined();
      if (what === 'no origin') expect(answer.body).toMatch(/Origin header is missing/);
    }
    const noToken = await send(`${pool.url}/hub/login`, { method: 'POST', headers: { ...FORM, origin: pool.url, cookie: form.cookie }, body: body('') });
    expect(noToken.status).toBe(403);
    expect(setCookie(noToken, 'dspool-session')).toBeUndefined();
    const otherCookie = await send(`${pool.url}/hub/login`, { method: 'POST', headers: { ...FORM, origin: pool.url, cookie: 'dspool-csrf=attacker' }, body: body(form.token) });
    expect(otherCookie.status).toBe(403);
  });

  it('logs out and starts a server only on a same-site POST with the CSRF token, never on a GET', async () => {
    const cookie = await pool.login(mallory, 'mallory-pass');
    // GET /hub/logout only asks.
    const ask = await pool.fetch('/hub/logout', { cookie, headers: { accept: 'text/html' } });
    expect(ask.status).toBe(200);
    expect((await pool.fetch('/hub/api/user', { cookie })).status).toBe(200);
    // GET /hub/user/<name>/… only offers to start; mallory's server stays stopped, and so does the admin's view of it.
    const offer = await pool.fetch(`/hub/user/${mallory}/tree`, { cookie, headers: { accept: 'text/html' } });
    expect(offer.status).toBe(200);
    expect(await offer.text()).toContain('button');
    const adminCookie = await pool.login(admin, 'admin-pass');
    await pool.fetch(`/hub/user/${mallory}/tree`, { cookie: adminCookie, headers: { accept: 'text/html' } });
    await new Promise((r) => setTimeout(r, 1_000));
    const model = (await (await pool.fetch(`/hub/api/users/${mallory}`, { token: adminToken })).json()) as { servers: Record<string, unknown> };
    expect(model.servers).toEqual({});
    // A POST without the token, or from another origin, does nothing either.
    const { token } = await pool.formToken('/hub/logout', cookie);
    const forged = await pool.fetch('/hub/logout', { method: 'POST', cookie, headers: { ...FORM, origin: pool.url }, body: '_xsrf=forged' });
    expect(forged.status).toBe(403);
    const foreign = await pool.fetch('/hub/logout', { method: 'POST', cookie, headers: { ...FORM, origin: 'http://evil.example' }, body: `_xsrf=${token}` });
    expect(foreign.status).toBe(403);
    const bare = await pool.fetch('/hub/api/users/' + mallory + '/server', { method: 'POST', cookie });
    expect(bare.status).toBe(403);
    expect(await bare.text()).toMatch(/Origin header is missing/);
    expect((await pool.fetch('/hub/api/user', { cookie })).status).toBe(200);
    // The real form works.
    const out = await pool.fetch('/hub/logout', { method: 'POST', cookie, headers: { ...FORM, origin: pool.url }, body: `_xsrf=${token}` });
    expect(out.status).toBe(302);
    expect((await pool.fetch('/hub/api/user', { cookie })).status).toBe(403);
  });

  it('shows an admin a warning before another user\'s server on the hub\'s origin, and lets them in after Continue', async () => {
    const cookie = await pool.login(admin, 'admin-pass');
    const first = await pool.fetch(`/user/${alice}/tree`, { cookie, headers: { accept: 'text/html' } });
    expect(first.status).toBe(302);
    const confirm = first.headers.get('location') ?? '';
    expect(confirm).toBe(`/hub/confirm/${alice}?next=${encodeURIComponent(`/user/${alice}/tree`)}`);
    const warning = await pool.fetch(confirm, { cookie, headers: { accept: 'text/html' } });
    const html = await warning.text();
    expect(html).toContain('runs in your browser on the hub');
    // Cookie-authenticated API calls and WebSockets to alice's server are refused until then.
    expect((await pool.fetch(`/user/${alice}/api/status`, { cookie })).status).toBe(403);
    const token = /name="_xsrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
    const go = await pool.fetch(confirm, { method: 'POST', cookie, headers: { ...FORM, origin: pool.url }, body: `_xsrf=${token}` });
    expect(go.status).toBe(303);
    const ack = (go.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    expect(ack).toMatch(/^dspool-ack=/);
    const through = await pool.fetch(`/user/${alice}/tree`, { cookie: `${cookie}; ${ack}`, headers: { accept: 'text/html' } });
    expect(through.status).toBe(200);
    expect((await events('user.admin_access')).some((e) => e.user === alice)).toBe(true);
    // alice opening her own server sees no warning.
    const own = await pool.fetch(`/user/${alice}/tree`, { cookie: await pool.login(alice, 'alice-pass'), headers: { accept: 'text/html' } });
    expect(own.status).toBe(200);
  });

  it('never locks the admin out of the web login: 12 wrong passwords from one address, then the right one from another; all audited', async () => {
    const outcomes: number[] = [];
    for (let i = 0; i < 12; i++) outcomes.push((await login(admin, `guess-${i}`, '127.0.0.1')).status);
    expect(outcomes.slice(0, 5)).toEqual([403, 403, 403, 403, 403]);
    expect(outcomes.slice(5)).toEqual(Array(7).fill(429));
    // Even the right password is refused from the guessing address now…
    const there = await login(admin, 'admin-pass', '127.0.0.1');
    expect(there.status).toBe(429);
    expect(there.headers['retry-after']).toMatch(/^\d+$/);
    // …but the admin, from their own address, logs in.
    const elsewhere = await login(admin, 'admin-pass', '127.0.0.2');
    expect(elsewhere.status).toBe(302);
    expect(setCookie(elsewhere, 'dspool-session')).toBeDefined();
    const failed = (await events('user.login_failed')).filter((e) => e.user === admin);
    expect(failed.length).toBeGreaterThanOrEqual(5);
    expect(failed[0]?.data).toMatchObject({ from: '127.0.0.1', via: 'web' });
    expect((await events('user.login_locked')).some((e) => e.user === admin && e.data.from === '127.0.0.1' && e.data.by === 'pair')).toBe(true);
  }, 120_000);

  it('limits SSH with the same limiter: the guessing address is refused for SSH too, and the admin gets in over SSH from another', async () => {
    // The web failures above already limit (admin, 127.0.0.1) for SSH too.
    const shared = await ssh(admin, 'admin-pass', '127.0.0.1', 'true');
    expect(shared.code).toBe(255);
    expect(shared.stderr).toContain('too many failed logins');
    // 10 wrong SSH passwords from another address…
    for (let i = 0; i < 10; i++) expect((await ssh(admin, `ssh-guess-${i}`, '127.0.0.5', 'true')).code).toBe(255);
    const blocked = await ssh(admin, 'admin-pass', '127.0.0.5', 'true');
    expect(blocked.code).toBe(255);
    expect(blocked.stderr).toContain('too many failed logins');
    // …and the admin from their own address is let in.
    const real = await ssh(admin, 'admin-pass', '127.0.0.6');
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout.trim()).toBe(admin);
    const failed = (await events('user.login_failed')).filter((e) => e.user === admin && e.data.via === 'ssh');
    expect(failed.some((e) => e.data.from === '127.0.0.5')).toBe(true);
  }, 300_000);

  it('keeps answering during a guessing flood, refuses what exceeds the argon2 cap, and lets alice log in after it', async () => {
    const form = await loginForm('127.0.0.3');
    const guess = (from: string, i: number) =>
      send(`${pool.url}/hub/login`, {
        from, method: 'POST', headers: { ...FORM, origin: pool.url, cookie: form.cookie }, body: new URLSearchParams({ username: i % 2 ? admin : alice, password: `flood-${i}`, _xsrf: form.token }).toString(),
      }).catch((error: unknown) => ({ status: 0, headers: {}, body: String(error), ms: 0 }) as Answer);
    // From one address: a couple of checks at a time, the rest refused at once; alice from her address gets in meanwhile.
    const single = Array.from({ length: 60 }, (_, i) => guess('127.0.0.3', i));
    const aliceDuring = await login(alice, 'alice-pass', '127.0.0.4');
    expect(aliceDuring.status).toBe(302);
    const singleAnswers = await Promise.all(single);
    const singleStatus = singleAnswers.map((a) => a.status);
    expect(singleStatus.every((s) => s === 403 || s === 429 || s === 503)).toBe(true);
    expect(singleStatus.filter((s) => s === 503).length).toBeGreaterThan(0);

    const quiet: number[] = [];
    for (let i = 0; i < 15; i++) quiet.push((await send(`${pool.url}/hub/api/user`, { headers: { authorization: `token ${aliceToken}` } })).ms);
    quiet.sort((a, b) => a - b);

    // From 40 addresses at once (more than the hub checks and queues): the excess is refused as busy, and the
    // hub's API keeps answering throughout.
    const spread = Array.from({ length: 160 }, (_, i) => guess(`127.0.1.${10 + (i % 40)}`, i));
    const latencies: number[] = [];
    for (let i = 0; i < 15; i++) {
      const answer = await send(`${pool.url}/hub/api/user`, { headers: { authorization: `token ${aliceToken}` } });
      expect(answer.status).toBe(200);
      latencies.push(answer.ms);
    }
    const spreadAnswers = await Promise.all(spread);
    const spreadStatus = spreadAnswers.map((a) => a.status);
    expect(spreadStatus.every((s) => s === 403 || s === 429 || s === 503)).toBe(true);
    expect(spreadStatus.filter((s) => s === 503).length).toBeGreaterThan(0);
    latencies.sort((a, b) => a - b);
    console.log(`hub API: quiet median ${quiet[7]?.toFixed(0)} ms, max ${quiet.at(-1)?.toFixed(0)} ms; during a 160-guess flood from 40 addresses median ${latencies[7]?.toFixed(0)} ms, max ${latencies.at(-1)?.toFixed(0)} ms`);
    // Generous for a loaded 2-core machine shared with other work (the slowest answer is the one queued behind the
    // flood's 160 connections arriving at once: 4–8 s measured here); the point is that it answers, and mostly fast.
    expect(latencies[7]).toBeLessThan(2_000);
    expect(latencies.at(-1)).toBeLessThan(30_000);
    expect((await events('user.login_busy')).length).toBeGreaterThan(0);
    expect((await login(alice, 'alice-pass', '127.0.0.7')).status).toBe(302);
  }, 180_000);

  it.skipIf(noBrowser !== '')('in a real browser, a same-site page on another port can neither log the victim in as mallory nor log them out', async () => {
    const evil = http.createServer((req, res) => {
      res.setHeader('content-type', 'text/html');
      if (req.url === '/login') {
        res.end(`<form id="f" method="post" action="${pool.url}/hub/login"><input name="username" value="${mallory}"><input name="password" value="mallory-pass"></form><script>document.getElementById('f').submit()</script>`);
      } else {
        res.end(`<img src="${pool.url}/hub/logout"><img src="${pool.url}/hub/user/${mallory}/tree"><form id="f" method="post" action="${pool.url}/hub/logout"></form><script>setTimeout(function () { document.getElementById('f').submit(); }, 500)</script>`);
      }
    });
    await new Promise<void>((resolve) => evil.listen(0, '127.0.0.1', resolve));
    const evilUrl = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
    const context = await (browser as Browser).newContext();
    try {
      const page = await context.newPage();
      // Login CSRF: the forged post is refused and the browser holds no login.
      await page.goto(`${evilUrl}/login`);
      await landOn(page, `${pool.url}/hub/login`);
      expect(await page.content()).toContain('Refused');
      expect((await context.cookies(pool.url)).map((c) => c.name)).not.toContain('dspool-session');

      // Logged in as alice (from the pool's own form), a visit to the page does not log her out.
      await page.goto(`${pool.url}/hub/login?next=/hub/home`);
      await page.fill('input[name=username]', alice);
      await page.fill('input[name=password]', 'alice-pass');
      await page.click('button[type=submit]');
      await page.waitForURL('**/hub/home');
      await page.goto(`${evilUrl}/logout`);
      await landOn(page, `${pool.url}/hub/logout`);
      // Refused by the hub's Origin check for cookie requests, before the form's own checks.
      expect(await page.content()).toContain('cross-origin request refused');
      await page.goto(`${pool.url}/hub/home`);
      expect(new URL(page.url()).pathname).toBe('/hub/home');
      const model = (await (await pool.fetch(`/hub/api/users/${mallory}`, { token: adminToken })).json()) as { servers: Record<string, unknown> };
      expect(model.servers).toEqual({});
      // The real log-out button works.
      await page.goto(`${pool.url}/hub/logout`);
      await page.click('button[type=submit]');
      await page.waitForURL('**/hub/login');
      expect((await context.cookies(pool.url)).map((c) => c.name)).not.toContain('dspool-session');
    } finally {
      await context.close();
      evil.closeAllConnections();
      await new Promise<void>((resolve) => evil.close(() => resolve()));
    }
  }, 120_000);
});

describe.skipIf(skipReason !== '')('gateway.userHost: each user\'s server on its own origin', () => {
  const pool = new TestPool({ instances: 1, gateway: 'userHost: "{user}.localhost"' });
  const alice = `a${rand()}`;
  const mallory = `m${rand()}`;
  let aliceToken = '';
  let hubUrl = '';
  let browser: Browser | undefined;

  beforeAll(async () => {
    await pool.start();
    aliceToken = await pool.addUser(alice, 'alice-pass');
    await pool.addUser(mallory, 'mallory-pass');
    hubUrl = `http://localhost:${new URL(pool.url).port}`;
    await pool.startServer(alice, aliceToken, 90_000);
    if (!noBrowser) browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage'] });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await pool.cleanup();
  }, 120_000);

  /** A request to the gateway with the Host a browser would send for `url`. */
  const at = (url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<Answer> => {
    const target = new URL(url);
    return send(`${pool.url}${target.pathname}${target.search}`, { ...options, headers: { host: target.host, ...options.headers } });
  };

  it('gives a user host its own login cookie through the hub, and the hub\'s cookie never works there', async () => {
    const port = new URL(pool.url).port;
    const aliceHost = `http://${alice}.localhost:${port}`;
    // Log in on the hub's host.
    const form = await at(`${hubUrl}/hub/login`, { headers: { accept: 'text/html' } });
    const token = /name="_xsrf" value="([^"]+)"/.exec(form.body)?.[1] ?? '';
    const logged = await at(`${hubUrl}/hub/login`, {
      method: 'POST', headers: { ...FORM, origin: hubUrl, cookie: setCookie(form, 'dspool-csrf') ?? '' }, body: new URLSearchParams({ username: alice, password: 'alice-pass', _xsrf: token }).toString(),
    });
    const hubCookie = setCookie(logged, 'dspool-session') ?? '';
    expect(hubCookie).not.toBe('');
    expect(logged.headers['set-cookie']?.join('\n')).not.toMatch(/domain=/i);

    // The hub's host sends /user/alice/ to alice's host; there the hub's cookie counts for nothing.
    const hop = await at(`${hubUrl}/user/${alice}/tree`, { headers: { cookie: hubCookie, accept: 'text/html' } });
    expect(hop.headers.location).toBe(`${aliceHost}/user/${alice}/tree`);
    const bounce = await at(`${aliceHost}/user/${alice}/tree`, { headers: { cookie: hubCookie, accept: 'text/html' } });
    expect(bounce.status).toBe(302);
    expect(bounce.headers.location).toMatch(new RegExp(`^${hubUrl}/hub/user-host/authorize\\?`));
    expect((await at(`${aliceHost}/user/${alice}/api/status`, { headers: { cookie: hubCookie } })).status).toBe(401);

    // The handshake: the hub hands a one-time code to alice's host, which trades it for its own cookie.
    const authorize = await at(bounce.headers.location ?? '', { headers: { cookie: hubCookie, accept: 'text/html' } });
    const callback = authorize.headers.location ?? '';
    expect(callback.startsWith(`${aliceHost}/hub/user-host/callback?`)).toBe(true);
    const landed = await at(callback, { headers: { accept: 'text/html' } });
    expect(landed.headers.location).toBe(`/user/${alice}/tree`);
    const hostCookie = setCookie(landed, 'dspool-host-session') ?? '';
    expect(hostCookie).not.toBe('');
    expect(landed.headers['set-cookie']?.join('\n')).not.toMatch(/domain=/i);
    expect((await at(callback, { headers: { accept: 'text/html' } })).status).toBe(403);
    const jupyter = await at(`${aliceHost}/user/${alice}/api/status`, { headers: { cookie: hostCookie } });
    expect(jupyter.status).toBe(200);

    // The host cookie reaches nothing but alice's server on alice's host.
    expect((await at(`${aliceHost}/hub/api/user`, { headers: { cookie: hostCookie } })).status).toBe(404);
    expect((await at(`${aliceHost}/user/${mallory}/api/status`, { headers: { cookie: hostCookie } })).status).toBe(404);
    // (A browser never sends it to mallory's host; sent there by hand, it is alice's and not mallory's.)
    expect((await at(`http://${mallory}.localhost:${port}/user/${mallory}/api/status`, { headers: { cookie: hostCookie } })).status).toBe(403);
    // A code for alice's host is no good on mallory's.
    const again = await at(bounce.headers.location ?? '', { headers: { cookie: hubCookie, accept: 'text/html' } });
    const stolen = new URL(again.headers.location ?? '');
    expect((await at(`http://${mallory}.localhost:${port}${stolen.pathname}${stolen.search}`, { headers: { accept: 'text/html' } })).status).toBe(403);

    // Logging out on the hub ends the host login made from it.
    const out = await at(`${hubUrl}/hub/logout`, { headers: { cookie: hubCookie, accept: 'text/html' } });
    const outToken = /name="_xsrf" value="([^"]+)"/.exec(out.body)?.[1] ?? '';
    const done = await at(`${hubUrl}/hub/logout`, { method: 'POST', headers: { ...FORM, origin: hubUrl, cookie: hubCookie }, body: `_xsrf=${outToken}` });
    expect(done.status).toBe(302);
    expect((await at(`${aliceHost}/user/${alice}/api/status`, { headers: { cookie: hostCookie } })).status).toBe(401);
  }, 120_000);

  it.skipIf(noBrowser !== '')('in a real browser, alice\'s server runs on alice.localhost, which never holds the hub\'s login cookie', async () => {
    const port = new URL(pool.url).port;
    const context = await (browser as Browser).newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${hubUrl}/user/${alice}/tree`);
      // Not logged in anywhere: alice's host → the hub's authorize → the login form (on the hub's host).
      await page.waitForURL(`${hubUrl}/hub/login?**`);
      await page.fill('input[name=username]', alice);
      await page.fill('input[name=password]', 'alice-pass');
      await page.click('button[type=submit]');
      await page.waitForURL(`http://${alice}.localhost:${port}/user/${alice}/tree**`, { timeout: 60_000 });
      await page.waitForSelector('#notebook_list', { timeout: 30_000 });
      const onAlice = (await context.cookies(`http://${alice}.localhost:${port}`)).map((c) => c.name);
      expect(onAlice).toContain('dspool-host-session');
      expect(onAlice).not.toContain('dspool-session');
      expect((await context.cookies(hubUrl)).map((c) => c.name)).toContain('dspool-session');
      // JavaScript on alice's origin finds no hub there: the hub's API is not served on a user host.
      expect(await page.evaluate(async () => (await fetch('/hub/api/user')).status)).toBe(404);
    } finally {
      await context.close();
    }
  }, 180_000);
});
