// A hub restart drops nothing: open kernel WebSockets stay up, routes keep working, sessions are re-adopted.
import { existsSync } from 'node:fs';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPool, alive, executeInKernel, rand } from './harness.js';

async function openKernel(pool: TestPool, user: string, token: string): Promise<{ ws: WebSocket; url: string }> {
  const response = await pool.fetch(`/user/${user}/api/kernels`, { method: 'POST', token, body: '{}', headers: { 'content-type': 'application/json' } });
  const { id } = (await response.json()) as { id: string };
  const url = `${pool.url.replace('http', 'ws')}/user/${user}/api/kernels/${id}/channels`;
  const ws = new WebSocket(url, { headers: { authorization: `token ${token}` } });
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, url };
}

describe.skipIf(!existsSync('/usr/bin/jupyter-notebook'))('hub restart', () => {
  const pool = new TestPool({ instances: 2 });
  const users = [`h${rand()}`, `k${rand()}`];
  const tokens: string[] = [];
  let adminToken = '';

  beforeAll(async () => {
    await pool.start();
    adminToken = await pool.addUser(`r${rand()}`, 'root-pass', true);
    for (const user of users) tokens.push(await pool.addUser(user, 'pw'));
    await Promise.all(users.map((user, i) => pool.startServer(user, tokens[i] ?? '')));
  }, 180_000);

  afterAll(() => pool.cleanup(), 90_000);

  it('keeps open kernel WebSockets up and re-adopts both sessions after the hub is killed', async () => {
    const kernels = await Promise.all(users.map((user, i) => openKernel(pool, user, tokens[i] ?? '')));
    const closed: string[] = [];
    kernels.forEach((k, i) => k.ws.on('close', () => closed.push(users[i] ?? '')));
    const instances = (await (await pool.fetch('/hub/api/instances', { token: adminToken })).json()) as Array<{ id: string }>;
    const protectedId = instances[0]?.id ?? '';
    const protect = await pool.fetch(`/hub/api/instances/${protectedId}/protect`, { method: 'POST', token: adminToken, body: JSON.stringify({ protected: true }) });
    expect(protect.status).toBe(200);
    const deadline = Date.now() + 30_000;
    await pool.killHub(30_000);
    // The agents rejoin and the sessions are re-adopted.
    let listed: Array<{ name: string; servers: Record<string, { ready: boolean }> }> = [];
    while (Date.now() < deadline) {
      listed = (await (await pool.fetch('/hub/api/users', { token: adminToken })).json()) as typeof listed;
      if (users.every((u) => listed.find((m) => m.name === u)?.servers['']?.ready)) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    for (const user of users) expect(listed.find((m) => m.name === user)?.servers['']?.ready).toBe(true);
    expect(closed).toEqual([]);
    // Protection is kept in the store, so it survives the restart.
    const after = (await (await pool.fetch(`/hub/api/instances/${protectedId}`, { token: adminToken })).json()) as { protected: boolean };
    expect(after.protected).toBe(true);
    for (const [i, kernel] of kernels.entries()) {
      expect(kernel.ws.readyState).toBe(WebSocket.OPEN);
      const result = await executeInKernel(kernel.url, '40+2', { authorization: `token ${tokens[i] ?? ''}` });
      expect(result.text).toContain('42');
      kernel.ws.close();
    }
  });

  it('scales in by draining, never killing, and keeps the new size across a hub restart', async () => {
    const scaled = await pool.cli(['scale', '1', '--json']);
    expect(scaled.code, scaled.stderr).toBe(0);
    const body = JSON.parse(scaled.stdout) as { instances: number; draining: string[] };
    expect(body.instances).toBe(1);
    expect(body.draining).toHaveLength(1);
    const drainingId = body.draining[0] ?? '';
    // Both users still work: the draining instance's session is not touched.
    for (const [i, user] of users.entries()) expect((await pool.fetch(`/user/${user}/api/status`, { token: tokens[i] ?? '' })).status).toBe(200);
    const deadline = Date.now() + 30_000;
    await pool.killHub(30_000);
    const after = (await (await pool.fetch('/hub/api/pool', { token: adminToken })).json()) as { instances: number; draining: string[] };
    expect(after.instances).toBe(1);
    // The user on the draining instance ends their session; the instance goes and is not replaced.
    const onDraining = (await (await pool.fetch('/hub/api/users', { token: adminToken })).json()) as Array<{ name: string; servers: Record<string, { instance: string }> }>;
    const leaving = onDraining.find((u) => u.servers['']?.instance === drainingId)?.name ?? '';
    const index = users.indexOf(leaving);
    expect(index).toBeGreaterThanOrEqual(0);
    expect((await pool.fetch(`/hub/api/users/${leaving}/server`, { method: 'DELETE', token: tokens[index] ?? '' })).status).toBe(204);
    let instances: Array<{ id: string }> = [];
    while (Date.now() < deadline + 30_000) {
      instances = (await (await pool.fetch('/hub/api/instances', { token: adminToken })).json()) as Array<{ id: string }>;
      if (instances.length === 1) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(instances.map((i) => i.id)).not.toContain(drainingId);
    expect(instances).toHaveLength(1);
    // Scaling out again waits, with each new instance's progress on stderr.
    const out = await pool.cli(['scale', '2', '--wait', '--json']);
    expect(out.code, out.stderr).toBe(0);
    expect(JSON.parse(out.stdout)).toMatchObject({ instances: 2, ready: 2 });
    expect(out.stderr).toMatch(/instance i-[a-z0-9]+: ready/);
  });
  it('drains an instance whose agent is out of touch when the pool scales in, and removes it', async () => {
    type Item = { id: string; state: string; sessions: number; protected: boolean; draining: boolean; provider: { pid: number } };
    const list = async () => (await (await pool.fetch('/hub/api/instances', { token: adminToken })).json()) as Item[];
    const idle = (await list()).find((i) => !i.protected && i.sessions === 0);
    expect(idle).toBeDefined();
    const { id, provider } = idle as Item;
    // Freeze its agent: it stops heartbeating and the hub marks it unreachable.
    process.kill(provider.pid, 'SIGSTOP');
    try {
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && (await list()).find((i) => i.id === id)?.state !== 'unreachable') await new Promise((r) => setTimeout(r, 200));
      expect((await list()).find((i) => i.id === id)?.state).toBe('unreachable');
      const scaled = await pool.cli(['scale', '1', '--json']);
      expect(scaled.code, scaled.stderr).toBe(0);
      expect((JSON.parse(scaled.stdout) as { draining: string[] }).draining).toEqual([id]);
    } finally {
      process.kill(provider.pid, 'SIGCONT');
    }
    // It holds no session, so it goes; the pool stays at one instance and the agent process is gone.
    const deadline = Date.now() + 30_000;
    let left = await list();
    while (Date.now() < deadline && (left.some((i) => i.id === id) || alive(provider.pid))) {
      await new Promise((r) => setTimeout(r, 250));
      left = await list();
    }
    expect(left.map((i) => i.id)).not.toContain(id);
    expect(left).toHaveLength(1);
    expect(alive(provider.pid)).toBe(false);
  });
});
