import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createLogger } from '../../lib/log.js';
import { INSTANCE_HEADER, type Checks } from '../../protocol/agent.js';
import type { InstanceGone, InstanceSpec, Provider, ProviderInstance } from '../../providers/provider.js';
import { AgentRegistry } from '../agents/registry.js';
import { EventLog } from '../events.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import { InstancePool } from './pool.js';

/** An engine whose instances never run an agent (what a crash at boot looks like from the hub). */
class SilentProvider implements Provider {
  readonly type = 'silent';
  readonly created: string[] = [];
  readonly deleted: string[] = [];
  async create(spec: InstanceSpec): Promise<ProviderInstance> {
    this.created.push(spec.id);
    return { id: spec.id, address: '127.0.0.1', details: {} };
  }
  async delete(id: string): Promise<void> {
    this.deleted.push(id);
  }
  async list(): Promise<ProviderInstance[]> {
    return [];
  }
  async close(): Promise<void> {}
}

/** An engine that keeps running what it created (list() finds it again after a hub restart). */
class KeepingProvider extends SilentProvider {
  override async list(): Promise<ProviderInstance[]> {
    return this.created.filter((id) => !this.deleted.includes(id)).map((id) => ({ id, address: '127.0.0.1', details: {} }));
  }
}

/** An engine that can tell when an instance is gone (as the local provider does when its agent process exits). */
class WatchingProvider extends SilentProvider {
  readonly listeners = new Set<(gone: InstanceGone) => void>();
  watchGone(listener: (gone: InstanceGone) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }
  gone(id: string, reason: string): void {
    for (const listener of this.listeners) listener({ id, reason });
  }
}

function makePool(provider: Provider, size: number, options: { store?: Store; sessionsOn?: number; acceptAgents?: boolean } = {}) {
  const log = createLogger('test', 'silent');
  const store = options.store ?? openSqliteStore({ file: ':memory:' });
  const registry = new AgentRegistry({ verifyJoin: async () => options.acceptAgents ?? false, heartbeatIntervalMs: 1000, log });
  const pool = new InstancePool({
    store, provider, registry, events: new EventLog(store, log), log, hubUrl: 'http://127.0.0.1:1', size, deleteGraceMs: 10,
    agentSettings: {
      sharePath: '/tmp', logLevel: 'silent', ssh: null, gpuCommand: null,
      jupyter: { command: ['/bin/true'], args: [], startTimeoutMs: 1000, path: '/usr/bin' },
    },
    capacity: { maxSessions: null }, heartbeatIntervalMs: 1000, drainDeadlineMs: 60_000, occupancy: { countOn: () => options.sessionsOn ?? 0 },
    repair: { missedHeartbeats: 3, failAfterMs: 30_000, joinTimeoutMs: 60_000, maxShare: 0.5 },
  });
  return { pool, store, registry };
}

describe('InstancePool repair', () => {
  it('fails and replaces an instance whose agent never joins, once the join timeout passes', async () => {
    const provider = new SilentProvider();
    const { pool } = makePool(provider, 2);
    await pool.grow();
    expect(pool.list().map((i) => i.state)).toEqual(['starting', 'starting']);
    pool.check(Date.now() + 30_000);
    expect(pool.list().every((i) => i.state === 'starting')).toBe(true);
    const [first] = provider.created;
    pool.check(Date.now() + 61_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(provider.deleted).toContain(first);
    expect(provider.created.length).toBeGreaterThanOrEqual(3);
    expect(pool.list()).toHaveLength(2);
  });

  it('repairs at most its share of the pool at once', async () => {
    const provider = new SilentProvider();
    const { pool, store } = makePool(provider, 4);
    await pool.grow();
    pool.check(Date.now() + 61_000);
    await new Promise((r) => setTimeout(r, 50));
    expect(provider.deleted).toHaveLength(2);
    const events = await store.listEvents({ limit: 50 });
    expect(events.filter((e) => e.kind === 'instance.repair_postponed')).toHaveLength(2);
  });
});

describe('InstancePool when the provider knows an instance is gone', () => {
  it('fails it at once (no failAfter wait), says why, tells its sessions and replaces it', async () => {
    const provider = new WatchingProvider();
    const { pool, store } = makePool(provider, 2);
    await pool.grow();
    const lost: string[] = [];
    pool.on('lost', (id, reason) => lost.push(`${id}: ${reason}`));
    const [first] = provider.created as [string];
    provider.gone(first, 'its agent process was killed by SIGKILL');
    expect(lost).toEqual([`${first}: its provider reports it gone: its agent process was killed by SIGKILL`]);
    await new Promise((r) => setTimeout(r, 50));
    expect(provider.deleted).toEqual([first]);
    expect(provider.created).toHaveLength(3);
    expect(pool.list().map((i) => i.id)).not.toContain(first);
    const events = await store.listEvents({ limit: 50 });
    expect(events.some((e) => e.kind === 'instance.failed' && e.instanceId === first)).toBe(true);
  });

  it('leaves alone an instance it is removing, and stops listening once stopped', async () => {
    const provider = new WatchingProvider();
    const { pool } = makePool(provider, 1);
    await pool.grow();
    const lost: string[] = [];
    pool.on('lost', (id) => lost.push(id));
    await pool.stopAll();
    expect(provider.listeners.size).toBe(0);
    provider.gone(provider.created[0] as string, 'exited');
    expect(lost).toEqual([]);
  });
});

describe('InstancePool scale-in', () => {
  it('drains an instance whose agent is out of touch, and the drain outlives two hub restarts', async () => {
    const provider = new KeepingProvider();
    const first = makePool(provider, 2, { sessionsOn: 1 });
    await first.pool.grow();
    // A hub restart: both instances come back unreachable until their agents rejoin.
    const second = makePool(provider, 2, { store: first.store, sessionsOn: 1 });
    await second.pool.restore();
    expect(second.pool.list().map((i) => i.state)).toEqual(['unreachable', 'unreachable']);
    second.pool.protect(provider.created[0] ?? '', true);
    expect(second.pool.resize(1)).toEqual([provider.created[1]]);
    const drained = second.pool.get(provider.created[1] ?? '');
    expect([drained?.state, drained?.draining]).toEqual(['unreachable', true]);
    // Its session still counts, so nothing is removed; another restart keeps the drain.
    const third = makePool(provider, 2, { store: first.store, sessionsOn: 1 });
    await third.pool.restore();
    expect(third.pool.list().filter((i) => i.draining).map((i) => i.id)).toEqual([provider.created[1]]);
    expect(third.pool.resize(1)).toEqual([]);
    expect(provider.deleted).toEqual([]);
  });

  it('removes a draining instance that holds no sessions even while its agent is out of touch', async () => {
    const provider = new KeepingProvider();
    const first = makePool(provider, 1);
    await first.pool.grow();
    const second = makePool(provider, 1, { store: first.store });
    await second.pool.restore();
    second.pool.resize(0);
    await new Promise((r) => setTimeout(r, 50));
    expect(provider.deleted).toEqual(provider.created);
    expect(second.pool.list()).toEqual([]);
  });
});

describe('InstancePool resize for the autoscaler', () => {
  it('drains the instances it is asked to prefer, and a scale-out during a drain starts new instances', async () => {
    const provider = new SilentProvider();
    const { pool } = makePool(provider, 3, { sessionsOn: 1 });
    await pool.grow();
    const [a, b, c] = provider.created;
    expect(pool.resize(2, [c ?? '', a ?? ''])).toEqual([c]);
    expect(pool.get(c ?? '')?.draining).toBe(true);
    // The draining instance (its session still there) no longer counts: asking for 3 again starts one more.
    pool.resize(3);
    await new Promise((r) => setTimeout(r, 20));
    expect(provider.created).toHaveLength(4);
    expect(pool.list().filter((i) => !i.draining)).toHaveLength(3);
    expect(pool.get(b ?? '')?.draining).toBe(false);
  });
});

describe('InstancePool on the checks an agent reports in its heartbeats', () => {
  it('makes a ready instance unhealthy while a check fails (saying why, once per new reason) and ready again after', async () => {
    const provider = new SilentProvider();
    const { pool, store, registry } = makePool(provider, 1, { acceptAgents: true });
    const server = createServer();
    server.on('upgrade', (request, socket, head) => void registry.handleUpgrade(request, socket, head));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      await pool.grow();
      const [id] = provider.created as [string];
      const ws = new WebSocket(`ws://127.0.0.1:${(server.address() as AddressInfo).port}/`, { headers: { [INSTANCE_HEADER]: id, authorization: 'Bearer t' } });
      await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
      const ok: Checks = { share: true, jupyter: true };
      const send = (message: object) => ws.send(JSON.stringify(message));
      const stateIs = async (state: string) => {
        for (let i = 0; i < 100 && pool.get(id)?.state !== state; i++) await new Promise((r) => setTimeout(r, 20));
        return pool.get(id);
      };
      const beat = (checks: Checks) => send({ type: 'heartbeat', load: { cpu: 0, memoryUsedBytes: 0, memoryTotalBytes: 1 }, servers: [], checks });
      send({
        type: 'hello', instanceId: id, version: 'test', address: '127.0.0.1', capacity: { cpus: 2, memoryBytes: 2 ** 30, gpus: 0 },
        isolation: false, checks: ok, sshPort: null, servers: [],
      });
      expect((await stateIs('ready'))?.state).toBe('ready');

      const lost = 'share: the probe did not finish in 10 s';
      beat({ share: false, jupyter: true, detail: lost });
      expect(await stateIs('unhealthy')).toMatchObject({ state: 'unhealthy', detail: lost });
      beat({ share: false, jupyter: true, detail: lost }); // the same reason again: nothing new to say
      const again = 'share: mounting sshfs failed; trying again in 4 s';
      beat({ share: false, jupyter: true, detail: again });
      for (let i = 0; i < 100 && pool.get(id)?.detail !== again; i++) await new Promise((r) => setTimeout(r, 20));
      expect(pool.get(id)).toMatchObject({ state: 'unhealthy', detail: again });

      beat(ok);
      expect(await stateIs('ready')).toMatchObject({ state: 'ready', detail: null });
      const events = (await store.listEvents({ limit: 50 })).filter((e) => e.instanceId === id).map((e) => `${e.kind} ${e.message}`);
      expect(events.filter((e) => e.includes(lost))).toHaveLength(1);
      expect(events.filter((e) => e.includes(again))).toHaveLength(1);
      expect(events.some((e) => e.startsWith('instance.state') && e.includes('unhealthy → ready'))).toBe(true);
      ws.close();
    } finally {
      registry.close();
      await pool.stopAll();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
