// Keeps the pool at its size: creates instances through the provider, tracks each one's state from its agent,
// and re-adopts instances that outlived a hub restart.
import { EventEmitter } from 'node:events';
import type { Logger } from '../../lib/log.js';
import type { Capacity, HelloMessage, Load } from '../../protocol/agent.js';
import type { InstanceSpec, Provider } from '../../providers/provider.js';
import type { AgentConnection } from '../agents/connection.js';
import type { AgentRegistry } from '../agents/registry.js';
import { hashSecret, newSecret, sameSecret } from '../auth/credentials.js';
import type { EventLog } from '../events.js';
import type { Store } from '../store/types.js';
import { nextInstanceState, type InstanceState } from './state.js';

/** What the pool needs from the hub. */
export interface InstancePoolContext {
  readonly store: Store;
  readonly provider: Provider;
  readonly registry: AgentRegistry;
  readonly events: EventLog;
  readonly log: Logger;
  readonly hubUrl: string;
  readonly agentSettings: InstanceSpec['settings'];
  /** How many instances to keep. */
  readonly size: number;
  /** Grace given to agents to stop their servers when an instance is deleted, in ms. */
  readonly deleteGraceMs: number;
}

/** An instance as the hub sees it right now. */
export interface InstanceView {
  readonly id: string;
  readonly state: InstanceState;
  readonly address: string | null;
  readonly created: string;
  readonly details: Readonly<Record<string, string | number>>;
  readonly capacity: Capacity | null;
  readonly load: Load | null;
  readonly lastHeartbeat: string | null;
  readonly sshPort: number | null;
  readonly isolation: boolean | null;
  /** Why the instance is unhealthy, when it is. */
  readonly detail: string | null;
}

/** Events of the pool. */
export interface InstancePoolEvents {
  /** An instance changed state (placement waits on `ready`). */
  state: [instance: InstanceView, from: InstanceState];
  /** An agent (re)joined; its `hello` lists the servers it runs, for re-adoption. */
  joined: [instanceId: string, hello: HelloMessage, connection: AgentConnection];
}

interface Entry {
  view: InstanceView;
  joinTokenHash: string;
}

export class InstancePool extends EventEmitter<InstancePoolEvents> {
  private readonly entries = new Map<string, Entry>();
  private closing: Promise<void> | undefined;

  constructor(private readonly ctx: InstancePoolContext) {
    super();
    ctx.registry.on('joined', (connection) => void this.onJoined(connection));
    ctx.registry.on('left', (instanceId) => this.onLeft(instanceId));
  }

  /** Re-adopts instances the provider still runs and forgets the ones it lost (call before `grow`). */
  async restore(): Promise<void> {
    const [records, running] = await Promise.all([this.ctx.store.listInstances(), this.ctx.provider.list()]);
    const alive = new Map(running.map((p) => [p.id, p]));
    for (const record of records) {
      const live = alive.get(record.id);
      if (!live || record.state === 'stopping' || record.state === 'deleted') {
        if (live) await this.ctx.provider.delete(record.id, { graceMs: this.ctx.deleteGraceMs });
        await this.ctx.store.deleteInstance(record.id);
        this.ctx.events.record('instance.deleted', `${record.id} no longer exists in the provider; forgotten`, { instanceId: record.id });
        continue;
      }
      alive.delete(record.id);
      const view: InstanceView = {
        id: record.id, state: 'unreachable', address: live.address, created: record.created, details: live.details,
        capacity: null, load: null, lastHeartbeat: null, sshPort: null, isolation: null, detail: 'waiting for its agent to reconnect',
      };
      this.entries.set(record.id, { view, joinTokenHash: record.joinTokenHash });
      const connection = this.ctx.registry.get(record.id);
      if (connection) await this.onJoined(connection);
    }
    for (const orphan of alive.keys()) {
      this.ctx.log.warn({ instance: orphan }, 'provider runs an instance the hub does not know; deleting it');
      await this.ctx.provider.delete(orphan, { graceMs: this.ctx.deleteGraceMs });
    }
  }

  /** Creates instances until the pool has its size. */
  async grow(): Promise<void> {
    const missing = this.ctx.size - this.entries.size;
    await Promise.all(Array.from({ length: Math.max(0, missing) }, () => this.create()));
  }

  list(): InstanceView[] {
    return [...this.entries.values()].map((e) => e.view);
  }

  get(id: string): InstanceView | undefined {
    return this.entries.get(id)?.view;
  }

  /** Ready instances (the only ones that take new sessions). */
  ready(): InstanceView[] {
    return this.list().filter((v) => v.state === 'ready');
  }

  /** True when `token` is the join token issued to `instanceId`. */
  verifyJoin(instanceId: string, token: string): boolean {
    const entry = this.entries.get(instanceId);
    return entry !== undefined && sameSecret(entry.joinTokenHash, hashSecret(token));
  }

  /** Deletes every instance (their agents stop their servers first). Safe to call twice. */
  stopAll(): Promise<void> {
    this.closing ??= (async () => {
      const results = await Promise.allSettled([...this.entries.keys()].map((id) => this.remove(id)));
      for (const result of results) {
        if (result.status === 'rejected') this.ctx.log.error({ err: String(result.reason) }, 'could not delete an instance');
      }
    })();
    return this.closing;
  }

  private async create(): Promise<void> {
    const id = `i-${newSecret(4).toLowerCase().replace(/[^a-z0-9]/g, '0')}`;
    const joinToken = newSecret();
    const created = new Date().toISOString();
    const entry: Entry = {
      joinTokenHash: hashSecret(joinToken),
      view: {
        id, state: 'starting', address: null, created, details: {}, capacity: null, load: null, lastHeartbeat: null,
        sshPort: null, isolation: null, detail: null,
      },
    };
    this.entries.set(id, entry);
    await this.persist(entry);
    this.ctx.events.record('instance.created', `creating instance ${id}`, { instanceId: id, data: { provider: this.ctx.provider.type } });
    try {
      const made = await this.ctx.provider.create({ id, hubUrl: this.ctx.hubUrl, joinToken, settings: this.ctx.agentSettings });
      entry.view = { ...entry.view, address: made.address, details: made.details };
      await this.persist(entry);
    } catch (error) {
      this.ctx.log.error({ instance: id, err: (error as Error).message }, 'provider could not create the instance');
      this.setState(id, 'stopping', `provider failed: ${(error as Error).message}`);
      this.entries.delete(id);
      await this.ctx.store.deleteInstance(id);
    }
  }

  private async remove(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return;
    if (entry.view.state !== 'stopping') this.setState(id, 'stopping');
    try {
      await this.ctx.provider.delete(id, { graceMs: this.ctx.deleteGraceMs });
    } finally {
      this.setState(id, 'deleted');
      this.entries.delete(id);
      await this.ctx.store.deleteInstance(id);
    }
  }

  private async onJoined(connection: AgentConnection): Promise<void> {
    const entry = this.entries.get(connection.instanceId);
    if (!entry) {
      connection.close(4003, 'unknown instance');
      return;
    }
    const { hello } = connection;
    const healthy = hello.checks.share && hello.checks.jupyter;
    entry.view = {
      ...entry.view, address: hello.address, capacity: hello.capacity, sshPort: hello.sshPort, isolation: hello.isolation,
      lastHeartbeat: new Date().toISOString(), detail: healthy ? null : (hello.checks.detail ?? 'a health check failed'),
    };
    connection.on('heartbeat', (beat) => {
      entry.view = { ...entry.view, load: beat.load, lastHeartbeat: new Date().toISOString() };
    });
    await this.persist(entry);
    if (entry.view.state !== 'stopping' && entry.view.state !== 'draining') {
      this.setState(connection.instanceId, healthy ? 'ready' : 'unhealthy', entry.view.detail ?? undefined);
    }
    this.emit('joined', connection.instanceId, hello, connection);
  }

  private onLeft(instanceId: string): void {
    const entry = this.entries.get(instanceId);
    if (!entry || this.ctx.registry.get(instanceId)) return;
    if (entry.view.state === 'stopping' || entry.view.state === 'deleted' || entry.view.state === 'unreachable') return;
    this.setState(instanceId, 'unreachable', 'agent connection lost');
  }

  private setState(id: string, to: InstanceState, detail?: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    const from = entry.view.state;
    if (from === to) return;
    nextInstanceState(from, to);
    entry.view = { ...entry.view, state: to };
    this.ctx.events.record('instance.state', `${id}: ${from} → ${to}${detail ? ` (${detail})` : ''}`, {
      instanceId: id,
      data: { from, to },
    });
    void this.persist(entry);
    this.emit('state', entry.view, from);
  }

  private persist(entry: Entry): Promise<void> {
    const { view } = entry;
    return this.ctx.store.putInstance({
      id: view.id, state: view.state, address: view.address, joinTokenHash: entry.joinTokenHash, details: view.details,
      created: view.created,
    });
  }
}
