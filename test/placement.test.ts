// End to end: placement, the wait queue, GPU grants, losing an instance (kill -9) and draining one, in a real
// pool (hub, gateway, two agents, real Jupyter) started with `dspool up`. Each instance has one fake GPU.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPool, alive, executeInKernel, rand } from './harness.js';

interface InstanceJson { id: string; state: string; sessions: number; provider: { pid: number } }
interface ServerJson { ready: boolean; instance: string | null; session_state: string; queue_position?: number | null; notice?: string | null }
interface UserJson { servers: Record<string, ServerJson> }
interface EventJson { kind: string; instance: string | null; user: string | null; message: string; data: Record<string, unknown> }

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

describe.skipIf(!existsSync('/usr/bin/jupyter-notebook'))('placement, queue, repair and drain', () => {
  const fakeSmi = 'fake-nvidia-smi';
  const pool = new TestPool({
    instances: 2,
    extraYaml: [
      'pool:',
      '  instances: 2',
      `  gpuCommand: ${fakeSmi}`,
      '  profiles: { gpu: { gpus: 1, description: one GPU }, huge: { gpus: 4 } }',
      '  repair: { failAfter: 2s, missedHeartbeats: 3, maxShare: 0.5 }',
      '  drain: { deadline: 10m }',
    ].join('\n'),
  });
  const [alice, bob, carol, dave, admin] = ['a', 'b', 'c', 'd', 'r'].map((p) => `${p}${rand()}`) as [string, string, string, string, string];
  const tokens: Record<string, string> = {};
  let adminToken = '';

  const api = async <T>(path: string, init: RequestInit & { token?: string } = {}): Promise<{ status: number; body: T }> => {
    const response = await pool.fetch(path, { token: adminToken, ...init, headers: { 'content-type': 'application/json', ...init.headers } });
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : null) as T };
  };
  const instances = async () => (await api<InstanceJson[]>('/hub/api/instances')).body;
  const server = async (user: string) => (await api<UserJson>(`/hub/api/users/${user}`)).body.servers[''];
  const events = async () => (await api<EventJson[]>('/hub/api/events?limit=1000')).body;
  const start = (user: string, profile?: string) =>
    api<ServerJson & { message?: string }>(`/hub/api/users/${user}/server`, {
      method: 'POST', token: tokens[user] ?? '', body: JSON.stringify(profile ? { profile } : {}),
    });
  const ready = (user: string, timeoutMs = 60_000) =>
    waitFor(`${user}'s server`, async () => {
      const s = await server(user);
      return s?.ready ? s : undefined;
    }, timeoutMs);

  beforeAll(async () => {
    // The pool's dataDir holds the fake nvidia-smi; the yaml names it by path relative to nothing, so write an absolute one.
    const script = join(pool.dir, fakeSmi);
    writeFileSync(script, '#!/bin/sh\necho "0, Fake GPU 16GB, 16384 MiB"\n');
    chmodSync(script, 0o755);
    writeFileSync(pool.config, readFileSync(pool.config, 'utf8').replace(`gpuCommand: ${fakeSmi}`, `gpuCommand: ${script}`).replace('pool: { instances: 2 }\n', ''));
    await pool.start();
    adminToken = await pool.addUser(admin, 'root-pass', true);
    for (const user of [alice, bob, carol, dave]) tokens[user] = await pool.addUser(user, 'pw');
  }, 180_000);

  afterAll(() => pool.cleanup(), 90_000);

  it('refuses a profile the pool cannot satisfy, an unknown profile and draining an unknown instance', async () => {
    const huge = await start(dave, 'huge');
    expect(huge.status).toBe(400);
    expect(huge.body).toMatchObject({ field: 'profile' });
    expect(huge.body.message).toMatch(/profile "huge" can never fit this pool: it needs 4 GPU\(s\); an instance has 1/);
    const unknown = await start(dave, 'nope');
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toMatch(/no profile named "nope" \(profiles: gpu, huge\)/);
    expect((await server(dave))).toBeUndefined();

    const missing = await api<{ message: string }>('/hub/api/instances/i-nothere/drain', { method: 'POST', body: '{}' });
    expect(missing.status).toBe(404);
    expect(missing.body.message).toBe('no instance "i-nothere"');
    const cli = await pool.cli(['instances', 'drain', 'i-nothere']);
    expect(cli.code).toBe(1);
    expect(cli.stderr).toContain('no instance "i-nothere"');
  });

  it('reports the fake GPU as capacity, grants each GPU once, queues what cannot fit and starts it when a GPU frees up', async () => {
    const listed = await instances();
    for (const i of listed) {
      const detail = (await api<{ capacity: { gpus: number[] }; gpu_devices: Array<{ name: string }> }>(`/hub/api/instances/${i.id}`)).body;
      expect(detail.capacity.gpus).toEqual([0]);
      expect(detail.gpu_devices[0]?.name).toBe('Fake GPU 16GB');
    }
    expect([201, 202]).toContain((await start(alice, 'gpu')).status);
    expect([201, 202]).toContain((await start(bob, 'gpu')).status);
    const [a, b] = [await ready(alice), await ready(bob)];
    expect(a.instance).not.toBe(b.instance);

    const queued = await start(carol, 'gpu');
    expect(queued.status).toBe(202);
    expect(queued.body).toMatchObject({ session_state: 'pending', queue_position: 1 });
    const queue = (await api<Array<{ user: string; position: number; profile: string; reason: string }>>('/hub/api/queue')).body;
    expect(queue).toEqual([expect.objectContaining({ user: carol, position: 1, profile: 'gpu', reason: 'none of 2 ready instance(s) has room' })]);
    const progress = await pool.fetch(`/hub/api/users/${carol}/server/progress`, { token: tokens[carol] ?? '' });
    const reader = progress.body?.getReader();
    let seen = '';
    while (reader && !seen.includes('position 1')) seen += new TextDecoder().decode((await reader.read()).value);
    await reader?.cancel();
    expect(seen).toContain('Waiting for an instance (position 1)');

    expect((await api(`/hub/api/users/${bob}/server`, { method: 'DELETE', token: tokens[bob] ?? '' })).status).toBe(204);
    const c = await ready(carol);
    expect(c.instance).toBe(b.instance);
    expect((await api<unknown[]>('/hub/api/queue')).body).toEqual([]);
    const placed = (await events()).filter((e) => e.kind === 'session.placed' && e.user === carol);
    expect(placed[0]?.message).toMatch(/spread: the least loaded ready instance/);
    expect(placed[0]?.data).toMatchObject({ profile: 'gpu', gpus: [0], strategy: 'spread' });
    const metrics = await (await pool.fetch('/hub/metrics', { token: adminToken })).text();
    expect(metrics).toMatch(/dspool_instances\{state="ready"\} 2/);
    expect(metrics).toMatch(/dspool_queue_length 0/);
    expect(metrics).toMatch(/dspool_placement_decision_seconds_count\{outcome="placed"\} \d+/);
    expect(metrics).toMatch(/dspool_instance_heartbeat_age_seconds\{instance="i-/);
  }, 150_000);

  it('survives kill -9 of an instance: notebook intact, instance failed, the next request lands elsewhere within 10 s, pool back at its size', async () => {
    const aliceInstance = (await server(alice))?.instance ?? '';
    const token = tokens[alice] ?? '';
    const notebook = { type: 'notebook', content: { cells: [{ cell_type: 'code', source: 'print(1)', metadata: {}, outputs: [], execution_count: null }], metadata: {}, nbformat: 4, nbformat_minor: 5 } };
    const saved = await pool.fetch(`/user/${alice}/api/contents/notebooks/remote/kept.ipynb`, {
      method: 'PUT', token, body: JSON.stringify(notebook), headers: { 'content-type': 'application/json' },
    });
    expect([200, 201]).toContain(saved.status);
    const onShare = join(pool.share, 'users', alice, 'notebooks', 'kept.ipynb');
    const before = readFileSync(onShare);
    const kernel = (await (await pool.fetch(`/user/${alice}/api/kernels`, { method: 'POST', token, body: '{}', headers: { 'content-type': 'application/json' } })).json()) as { id: string };
    const wsUrl = `${pool.url.replace('http', 'ws')}/user/${alice}/api/kernels/${kernel.id}/channels`;
    const cuda = await executeInKernel(wsUrl, 'import os; print(os.environ.get("CUDA_VISIBLE_DEVICES"))', { authorization: `token ${token}` });
    expect(cuda.text.trim()).toBe('0');

    const victim = (await instances()).find((i) => i.id === aliceInstance);
    expect(victim).toBeDefined();
    process.kill(-(victim?.provider.pid ?? 0), 'SIGKILL');
    await waitFor('the instance to fail', async () => ((await events()).some((e) => e.kind === 'instance.failed' && e.instance === aliceInstance) ? true : undefined), 30_000);
    const detected = Date.now();
    expect(alive(victim?.provider.pid ?? 0)).toBe(false);
    const lost = (await events()).find((e) => e.kind === 'session.lost' && e.user === alice);
    expect(lost?.instance).toBe(aliceInstance);

    const again = await start(alice);
    expect([201, 202]).toContain(again.status);
    const moved = await ready(alice, 10_000);
    expect(Date.now() - detected).toBeLessThan(10_000);
    expect(moved.instance).not.toBe(aliceInstance);
    expect(readFileSync(onShare).equals(before)).toBe(true);
    const listing = (await (await pool.fetch(`/user/${alice}/api/contents/notebooks/remote`, { token })).json()) as { content: Array<{ name: string }> };
    expect(listing.content.map((c) => c.name)).toContain('kept.ipynb');

    const healed = await waitFor('the pool to be back at its size', async () => {
      const now = await instances();
      return now.length === 2 && now.every((i) => i.state === 'ready') && !now.some((i) => i.id === aliceInstance) ? now : undefined;
    }, 60_000);
    expect(healed).toHaveLength(2);
  }, 120_000);

  it('drains an instance: no new sessions land there, its session keeps working until it ends, then it is removed and replaced', async () => {
    const carolInstance = (await server(carol))?.instance ?? '';
    const other = (await instances()).find((i) => i.id !== carolInstance)?.id ?? '';
    const protect = await pool.cli(['instances', 'protect', other]);
    expect(protect.code).toBe(0);
    const refused = await api<{ message: string }>(`/hub/api/instances/${other}/drain`, { method: 'POST', body: '{}' });
    expect(refused.status).toBe(409);
    expect(refused.body.message).toMatch(/protected/);
    expect((await pool.cli(['instances', 'protect', other, '--off'])).code).toBe(0);

    const drained = await pool.cli(['instances', 'drain', carolInstance]);
    expect(drained.code).toBe(0);
    expect(drained.stdout).toContain('draining');
    expect((await instances()).find((i) => i.id === carolInstance)?.state).toBe('draining');
    expect((await server(carol))?.notice).toMatch(/being drained/);
    expect((await events()).some((e) => e.kind === 'instance.drain' && e.instance === carolInstance)).toBe(true);

    expect([201, 202]).toContain((await start(dave)).status);
    expect((await ready(dave)).instance).not.toBe(carolInstance);
    expect((await pool.fetch(`/user/${carol}/api/status`, { token: tokens[carol] ?? '' })).status).toBe(200);

    for (const user of [alice, carol]) {
      if ((await server(user))?.instance === carolInstance) {
        expect((await api(`/hub/api/users/${user}/server`, { method: 'DELETE', token: tokens[user] ?? '' })).status).toBe(204);
      }
    }
    await waitFor('the drained instance to be removed', async () => ((await instances()).some((i) => i.id === carolInstance) ? undefined : true), 30_000);
    const after = await waitFor('a replacement', async () => {
      const now = await instances();
      return now.length === 2 && now.every((i) => i.state === 'ready') ? now : undefined;
    }, 60_000);
    expect(after.map((i) => i.id)).not.toContain(carolInstance);
  }, 150_000);
});
