// End to end: a real pool (hub, gateway, two agents, real Jupyter) started with `dspool up`, driven like a user.
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { instanceSchema, tokenSchema, userSchema } from '../src/hub/http/schemas.js';
import { TestPool, alive, executeInKernel, rand } from './harness.js';

const JUPYTER = '/usr/bin/jupyter-notebook';

describe.skipIf(!existsSync(JUPYTER))('a local pool of two instances', () => {
  const pool = new TestPool({ instances: 2 });
  const alice = `a${rand()}`;
  const bob = `b${rand()}`;
  const admin = `r${rand()}`;
  let aliceToken = '';
  let bobToken = '';
  let adminToken = '';

  beforeAll(async () => {
    await pool.start();
    adminToken = await pool.addUser(admin, 'root-pass', true);
    aliceToken = await pool.addUser(alice, 'alice-pass');
    bobToken = await pool.addUser(bob, 'bob-pass');
  }, 180_000);

  afterAll(async () => {
    await pool.cleanup();
  }, 90_000);

  it('serves health and lists both instances as ready', async () => {
    expect((await pool.fetch('/hub/health')).status).toBe(200);
    const instances = (await (await pool.fetch('/hub/api/instances', { token: adminToken })).json()) as Array<{
      id: string; state: string; address: string; sessions: number; load: unknown; provider: { pid: number };
    }>;
    expect(instances).toHaveLength(2);
    expect(() => instanceSchema.array().parse(instances)).not.toThrow();
    for (const instance of instances) {
      expect(instance.state).toBe('ready');
      expect(instance.address).toBe('127.0.0.1');
      expect(alive(instance.provider.pid)).toBe(true);
    }
  });

  it('refuses the instance list to a non-admin', async () => {
    expect((await pool.fetch('/hub/api/instances', { token: aliceToken })).status).toBe(403);
    expect((await pool.fetch('/hub/api/instances')).status).toBe(403);
  });

  it('logs in with the form, and refuses a wrong password', async () => {
    const cookie = await pool.login(alice, 'alice-pass');
    expect(cookie).toMatch(/^dspool-session=/);
    const wrong = await pool.fetch('/hub/login', { method: 'POST', body: new URLSearchParams({ username: alice, password: 'nope' }), headers: { origin: pool.url } });
    expect(wrong.status).toBe(403);
    expect(wrong.headers.get('set-cookie')).toBeNull();
    const invalid = await pool.fetch('/hub/login', { method: 'POST', body: new URLSearchParams({ username: '../x', password: 'x' }), headers: { origin: pool.url } });
    expect(invalid.status).toBe(400);
  });

  it('starts alice\'s real Jupyter server and saves her notebook on the share', async () => {
    const { instance } = await pool.startServer(alice, aliceToken);
    expect(instance).toMatch(/^i-/);
    const model = (await (await pool.fetch(`/hub/api/users/${alice}`, { token: aliceToken })).json()) as {
      servers: Record<string, { ready: boolean; pending: string | null; url: string; instance: string }>;
    };
    expect(model.servers['']).toMatchObject({ ready: true, pending: null, url: `/user/${alice}/`, instance });
    expect(() => userSchema.parse(model)).not.toThrow();

    const status = await pool.fetch(`/user/${alice}/api/status`, { token: aliceToken });
    expect(status.status).toBe(200);

    const notebook = { type: 'notebook', content: { cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5 } };
    const saved = await pool.fetch(`/user/${alice}/api/contents/notebooks/remote/x.ipynb`, {
      method: 'PUT', token: aliceToken, body: JSON.stringify(notebook), headers: { 'content-type': 'application/json' },
    });
    expect([200, 201]).toContain(saved.status);
    const onShare = join(pool.share, 'users', alice, 'notebooks', 'x.ipynb');
    expect(JSON.parse(readFileSync(onShare, 'utf8'))).toMatchObject({ nbformat: 4 });
  });

  it('runs a cell over the kernel WebSocket through the gateway, with a cookie and the right Origin', async () => {
    const cookie = await pool.login(alice, 'alice-pass');
    const kernel = await pool.fetch(`/user/${alice}/api/kernels`, {
      method: 'POST', cookie, headers: { origin: pool.url, 'content-type': 'application/json' }, body: '{}',
    });
    expect(kernel.status).toBe(201);
    const { id } = (await kernel.json()) as { id: string };
    const wsUrl = `${pool.url.replace('http', 'ws')}/user/${alice}/api/kernels/${id}/channels`;
    const first = await executeInKernel(wsUrl, 'import sys; print(sys.executable); 6*7', { cookie, origin: pool.url });
    expect(first.text).toContain('/usr/bin/python3');
    expect(first.text).toContain('42');
    await expect(executeInKernel(wsUrl, '1', { cookie, origin: 'http://evil.example' })).rejects.toThrow(/403/);
  });

  it('keeps users apart: bob cannot reach alice\'s server, and gets his own on the other instance', async () => {
    expect((await pool.fetch(`/user/${alice}/api/status`, { token: bobToken })).status).toBe(403);
    expect((await pool.fetch(`/hub/api/users/${alice}`, { token: bobToken })).status).toBe(403);
    expect((await pool.fetch(`/hub/api/users/${alice}/server`, { method: 'POST', token: bobToken })).status).toBe(403);
    const aliceInstance = ((await (await pool.fetch(`/hub/api/users/${alice}`, { token: aliceToken })).json()) as {
      servers: Record<string, { instance: string }>;
    }).servers['']?.instance;
    const { instance } = await pool.startServer(bob, bobToken);
    expect(instance).not.toBe(aliceInstance);
    const saved = await pool.fetch(`/user/${bob}/api/contents/notebooks/remote/b.ipynb`, {
      method: 'PUT', token: bobToken, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ type: 'notebook', content: { cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5 } }),
    });
    expect([200, 201]).toContain(saved.status);
    expect(existsSync(join(pool.share, 'users', bob, 'notebooks', 'b.ipynb'))).toBe(true);
    expect(existsSync(join(pool.share, 'users', alice, 'notebooks', 'b.ipynb'))).toBe(false);
  });

  it('links notebooks/remote in the user\'s $HOME (on the share) to their notebooks folder, and keeps the instance\'s disk for runtime files', async () => {
    const model = (await (await pool.fetch(`/hub/api/users/${alice}`, { token: aliceToken })).json()) as {
      servers: Record<string, { instance: string }>;
    };
    const instance = model.servers['']?.instance ?? '';
    const home = join(pool.share, 'users', alice, 'home');
    expect(readlinkSync(join(home, 'notebooks', 'remote'))).toBe(join(pool.share, 'users', alice, 'notebooks'));
    expect(existsSync(join(pool.dir, 'state', 'instances', instance, 'local', alice, 'ipython'))).toBe(true);
    expect(existsSync(join(home, '.ipython'))).toBe(false);
    const listing = (await (await pool.fetch(`/user/${alice}/api/contents/notebooks/remote`, { token: aliceToken })).json()) as {
      content: Array<{ name: string }>;
    };
    expect(listing.content.map((c) => c.name)).toContain('x.ipynb');
  });

  it('redirects a browser without a login to the login page, and a logged-in browser with no server to the progress page', async () => {
    const anonymous = await pool.fetch(`/user/${admin}/tree`, { headers: { accept: 'text/html' } });
    expect(anonymous.status).toBe(302);
    expect(anonymous.headers.get('location')).toMatch(/^\/hub\/login\?next=/);
    const cookie = await pool.login(admin, 'root-pass');
    const pending = await pool.fetch(`/user/${admin}/tree`, { cookie, headers: { accept: 'text/html' } });
    expect(pending.status).toBe(302);
    expect(pending.headers.get('location')).toBe(`/hub/user/${admin}/tree`);
    const page = await pool.fetch(`/hub/user/${admin}/tree`, { cookie, headers: { accept: 'text/html' } });
    expect(await page.text()).toContain('/hub/api/users/' + admin + '/server/progress');
    const progress = await pool.fetch(`/hub/api/users/${admin}/server/progress`, { cookie });
    const events = await progress.text();
    expect(events).toContain('"ready":true');
    const landed = await pool.fetch(`/user/${admin}/tree`, { cookie, headers: { accept: 'text/html' } });
    expect(landed.status).toBe(200);
    expect(await landed.text()).toContain('Jupyter');
  });

  it('gives Jupyter pages the script that shows the hub\'s notices as a banner', async () => {
    const script = await pool.fetch(`/user/${alice}/custom/custom.js`, { token: aliceToken });
    expect(script.status).toBe(200);
    expect(await script.text()).toContain('dspool-notice');
  });

  it('never shows the Jupyter token to a browser', async () => {
    const cookie = await pool.login(alice, 'alice-pass');
    const page = await pool.fetch(`/user/${alice}/tree`, { cookie, headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).not.toMatch(/token=[A-Za-z0-9_-]{16,}/);
  });

  it('publishes its OpenAPI document without authentication, and token models in JupyterHub\'s shape', async () => {
    const doc = (await (await pool.fetch('/hub/api/openapi.json')).json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe('3.1.0');
    expect(Object.keys(doc.paths)).toContain('/hub/api/users/{name}/server');
    const created = await pool.fetch(`/hub/api/users/${alice}/tokens`, { method: 'POST', token: aliceToken, body: JSON.stringify({ note: 'e2e', expires_in: 3600 }) });
    expect(created.status).toBe(201);
    const token = tokenSchema.parse(await created.json());
    expect(token.token).toMatch(/^dsp_/);
    const listed = (await (await pool.fetch(`/hub/api/users/${alice}/tokens`, { token: aliceToken })).json()) as { api_tokens: unknown[] };
    expect(JSON.stringify(listed)).not.toContain(token.token ?? '');
    expect((await pool.fetch(`/hub/api/users/${alice}/tokens/${token.id}`, { method: 'DELETE', token: aliceToken })).status).toBe(204);
    expect((await pool.fetch(`/hub/api/user`, { token: token.token })).status).toBe(403);
  });

  it('answers bad input with clear errors', async () => {
    const bad = await pool.cli(['users', 'add', 'Alice']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/lowercase/);
    const long = await pool.cli(['users', 'add', 'a'.repeat(40)]);
    expect(long.code).toBe(2);
    expect((await pool.fetch('/hub/api/users/a%20b', { token: adminToken })).status).toBe(400);
    expect((await pool.fetch('/hub/api/users/nobody', { token: adminToken })).status).toBe(404);
    expect((await pool.fetch('/hub/api/users', { token: 'not-a-token' })).status).toBe(403);
    const dup = await pool.fetch(`/hub/api/users/${alice}`, { method: 'POST', token: adminToken });
    expect(dup.status).toBe(409);
    const unknownField = await pool.fetch(`/hub/api/users/n${rand()}`, { method: 'POST', token: adminToken, body: JSON.stringify({ admn: true }) });
    expect(unknownField.status).toBe(400);
    expect(await unknownField.json()).toMatchObject({ status: 400, field: 'admn' });
    const html = await pool.fetch('/hub/api/users', { headers: { accept: 'text/html' } });
    expect(html.status).toBe(403);
    expect(html.headers.get('content-type')).toMatch(/application\/json/);
  });

  it('stops a server with DELETE and removes its route', async () => {
    expect((await pool.fetch(`/hub/api/users/${bob}/server`, { method: 'DELETE', token: bobToken })).status).toBe(204);
    const model = (await (await pool.fetch(`/hub/api/users/${bob}`, { token: bobToken })).json()) as { servers: Record<string, unknown> };
    expect(model.servers).toEqual({});
    expect((await pool.fetch(`/user/${bob}/api/status`, { token: bobToken })).status).toBe(503);
  });

  it('locks a disabled user out and stops their server, and lets them back in when enabled', async () => {
    expect((await pool.fetch(`/user/${alice}/api/status`, { token: aliceToken })).status).toBe(200);
    const disabled = await pool.cli(['users', 'disable', alice]);
    expect(disabled.code, disabled.stderr).toBe(0);
    expect((await pool.fetch('/hub/api/user', { token: aliceToken })).status).toBe(403);
    expect((await pool.fetch(`/user/${alice}/api/status`, { token: aliceToken })).status).not.toBe(200);
    const model = (await (await pool.fetch(`/hub/api/users/${alice}`, { token: adminToken })).json()) as { servers: Record<string, unknown>; disabled: boolean };
    expect(model).toMatchObject({ servers: {}, disabled: true });
    const wrong = await pool.fetch('/hub/login', { method: 'POST', body: new URLSearchParams({ username: alice, password: 'alice-pass' }), headers: { origin: pool.url } });
    expect(wrong.status).toBe(403);
    expect((await pool.cli(['users', 'disable', alice, '--enable'])).code).toBe(0);
    expect((await pool.fetch('/hub/api/user', { token: aliceToken })).status).toBe(200);
  });

  it('stops everything it started on SIGINT', async () => {
    const instances = (await (await pool.fetch('/hub/api/instances', { token: adminToken })).json()) as Array<{ provider: { pid: number } }>;
    const pids = instances.map((i) => i.provider.pid);
    expect(await pool.stop()).toBe(0);
    for (const pid of pids) expect(alive(pid)).toBe(false);
    const leftovers = await import('node:child_process').then(({ spawnSync }) =>
      spawnSync('pgrep', ['-f', `base_url=/user/(${alice}|${bob}|${admin})/`], { encoding: 'utf8' }).stdout.trim(),
    );
    expect(leftovers).toBe('');
  });
});
