// Keeps the pool at its size: creates instances through the provider, tracks each one's state and capacity from
// its agent, marks instances that stop heartbeating unreachable and then failed, replaces them (rate-limited),
// drains and removes instances on request, and re-adopts instances that outlived a hub restart.
import { EventEmitter } from 'node:events';
import { backoffMs } from '../../lib/backoff.js';
import type { Logger } from '../../lib/log.js';
import type { Capacity, HelloMessage, Load } from '../../protocol/agent.js';
import type { InstanceSpec, Provider } from '../../providers/provider.js';
import type { AgentConnection } from '../agents/connection.js';
import type { AgentRegistry } from '../agents/registry.js';
import { hashSecret, newSecret } from '../auth/credentials.js';
import { sameSecret } from '../../lib/secret.js';
import { InstanceNotFoundError, InstanceProtectedError, InvalidStateError } from '../errors.js';
import type { EventLog } from '../events.js';
import type { Room } from '../sessions/placement.js';
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
  /** What each instance offers, overriding what its agent measured (pool.yaml `pool.capacity`). */
  readonly capacity: CapacityOverride;
  /** How often agents heartbeat, in ms. */
  readonly heartbeatIntervalMs: number;
  readonly repair: RepairSettings;
  /** Default time a draining instance waits for its sessions, in ms. */
  readonly drainDeadlineMs: number;
  /** How many sessions each instance holds (a draining instance is removed once it holds none). */
  readonly occupancy: { countOn(instanceId: string): number };
}

/** Configured capacity per instance; undefined fields are measured by the agent. */
export interface CapacityOverride {
  readonly cpus?: number;
  readonly memoryBytes?: number;
  readonly gpus?: number;
  /** null: no session limit. */
  readonly maxSessions: number | null;
}

/** When an instance counts as lost, and how much of the pool may be repaired at once. */
export interface RepairSettings {
  /** Heartbeats an instance may miss before it is unreachable. */
  readonly missedHeartbeats: number;
  /** Time an instance may stay unreachable before it is failed and replaced, in ms. */
  readonly failAfterMs: number;
  /** Time a new instance's agent may take to join before the instance is failed and replaced, in ms. */
  readonly joinTimeoutMs: number;
  /** Largest share of the pool's size under repair at once (at least one instance). */
  readonly maxShare: number;
}

/**
 * What an instance offers to sessions: the configured override where there is one, else what the agent reported.
 *
 * @example
 * roomOf({ cpus: 8, memoryBytes: 2 ** 34, gpus: 1, gpuDevices: [{ index: 0, name: 'H100', memoryBytes: 8e10 }] }, { maxSessions: 4 });
 * // { cpus: 8, memoryBytes: 17179869184, gpuIndices: [0], maxSessions: 4 }
 */
export function roomOf(reported: Capacity, override: CapacityOverride): Room {
  const detected = reported.gpuDevices?.map((d) => d.index) ?? Array.from({ length: reported.gpus }, (_, i) => i);
  const gpuCount = override.gpus ?? reported.gpus;
  const gpuIndices = detected.slice(0, gpuCount);
  for (let i = 0; gpuIndices.length < gpuCount; i++) if (!gpuIndices.includes(i)) gpuIndices.push(i);
  return {
    cpus: override.cpus ?? reported.cpus,
    memoryBytes: override.memoryBytes ?? reported.memoryBytes,
    gpuIndices,
    maxSessions: override.maxSessions,
  };
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
  /** Public host key of the instance's SSH server, pinned by the front door. */
  readonly sshHostKey?: string;
  readonly isolation: boolean | null;
  /** Why the instance is unhealthy, when it is. */
  readonly detail: string | null;
  /** What it offers to sessions (overrides applied); null until its agent joined. */
  readonly room: Room | null;
  /** Protected instances are never drained or removed by the pool. */
  readonly protected: boolean;
  /**
   * Being drained: takes no new sessions and goes once they end. Usually `state` is then `draining`, but an
   * instance whose agent is out of touch stays `unreachable` and keeps draining when it comes back.
   */
  readonly draining: boolean;
  /** When a draining instance stops its remaining sessions (ISO-8601); null when not draining or no deadline. */
  readonly drainDeadline: string | null;
  /** Since when its agent has been out of touch (ISO-8601); null while in touch. */
  readonly unreachableSince: string | null;
}

/** The provider could not create instances; the pool retries with back-off (`GET /hub/api/pool` shows it). */
export interface CreateFailure {
  /** The provider error's stable code (e.g. `sbatch_rejected`, `slurm_unavailable`), or `provider_failed`. */
  readonly code: string;
  readonly message: string;
  /** Failed creates in a row. */
  readonly attempts: number;
  /** When the pool tries again (ISO-8601). */
  readonly retryAt: string;
}

/** First pause after a failed create, in ms; doubled per failure in a row, up to `CREATE_BACKOFF_MAX_MS`. */
const CREATE_BACKOFF_MIN_MS = 2_000;
const CREATE_BACKOFF_MAX_MS = 5 * 60_000;

/** Events of the pool. */
export interface InstancePoolEvents {
  /** An instance changed state (placement waits on `ready`). */
  state: [instance: InstanceView, from: InstanceState];
  /** An agent (re)joined; its `hello` lists the servers it runs, for re-adoption. */
  joined: [instanceId: string, hello: HelloMessage, connection: AgentConnection];
  /** An instance failed: its sessions are lost (the pool is replacing it). */
  lost: [instanceId: string, reason: string];
  /** A draining instance passed its deadline: its remaining sessions should be stopped. */
  drainExpired: [instanceId: string];
}

interface Entry {
  view: InstanceView;
  joinTokenHash: string;
  /** Epoch ms of the last heartbeat (or join); kept as a number so heartbeats stay cheap. */
  lastBeatMs: number;
  /** Epoch ms since the agent is out of touch; 0 while in touch. */
  unreachableSinceMs: number;
  /** Epoch ms of the drain deadline; 0 when not draining. */
  drainDeadlineMs: number;
  /** `drainExpired` was emitted for the current drain. */
  drainExpired: boolean;
  /** Being removed by `fail` or `retire` (not yet deleted). */
  removing: boolean;
}

const blankView = {
  address: null, details: {}, capacity: null, load: null, lastHeartbeat: null, sshPort: null, isolation: null, detail: null,
  room: null, protected: false, draining: false, drainDeadline: null, unreachableSince: null,
} as const;

/**
 * Keeps the pool's instances: creates them through the provider, tracks their agents and state, drains and removes them.
 *
 * @example
 * const pool = new InstancePool({ store, provider, registry, events, log, hubUrl, size: 2, deleteGraceMs: 10_000, ...placementSettings(config, { countOn }), agentSettings });
 * await pool.restore();
 * pool.resize(4); // [] while growing; shrinking returns the ids it started draining
 */
export class InstancePool extends EventEmitter<InstancePoolEvents> {
  private readonly entries = new Map<string, Entry>();
  /** The size the pool is kept at: pool.yaml's, or what `dspool scale` last asked for. */
  private desired: number;
  private closing: Promise<void> | undefined;
  private monitor: NodeJS.Timeout | undefined;
  /** Ready instances, rebuilt only when a state or capacity changes (placement reads it on every decision). */
  private readyCache: InstanceView[] | undefined;
  /** Instances whose postponed repair was already recorded (so the event log is not flooded). */
  private readonly postponed = new Set<string>();
  private readonly unwatchGone: (() => void) | undefined;
  /** The last failed create while failures continue; undefined once an instance joins. */
  private failure: CreateFailure | undefined;
  private retryTimer: NodeJS.Timeout | undefined;

  constructor(private readonly ctx: InstancePoolContext) {
    super();
    this.desired = ctx.size;
    ctx.registry.on('joined', (connection) => void this.onJoined(connection));
    ctx.registry.on('left', (instanceId) => this.onLeft(instanceId));
    this.unwatchGone = ctx.provider.watchGone?.(({ id, reason }) => this.onProviderGone(id, reason));
  }

  /** Why instances cannot be created right now, while the pool backs off; undefined when creates succeed. */
  get createError(): CreateFailure | undefined {
    return this.failure;
  }

  /**
   * The provider knows an instance is gone (its agent process exited, its Slurm job ended): there is nothing to wait
   * for, so it fails now (its sessions are lost, their users are placed elsewhere on their next request) instead
   * of after `repair.failAfter` of silence. An instance being removed, or the pool closing, is left alone.
   */
  private onProviderGone(id: string, reason: string): void {
    const entry = this.entries.get(id);
    if (!entry || entry.removing || this.closing || entry.view.state === 'failed') return;
    this.ctx.log.warn({ instance: id, reason }, 'the provider says the instance is gone; failing it now');
    this.ctx.registry.get(id)?.close(4005, 'instance gone');
    // Gone before its agent ever joined (a job that dies at start): the first time it is replaced at once, as any
    // loss; again before any instance joined, it is a failed create and the next one waits (no crash loop).
    if (entry.view.state === 'starting') {
      if (this.failure) this.backOff(id, 'instance_lost_at_start', reason);
      else this.failure = { code: 'instance_lost_at_start', message: reason, attempts: 0, retryAt: new Date().toISOString() };
      void this.fail(entry, `its provider reports it gone: ${reason}`);
      return;
    }
    // `unreachable` first (the one way into `failed`), then failed at once rather than after its grace period.
    this.markUnreachable(entry, Date.now(), `gone: ${reason}`);
    void this.fail(entry, `its provider reports it gone: ${reason}`);
  }

  /** Re-adopts instances the provider still runs and forgets the ones it lost (call before `grow`). */
  async restore(): Promise<void> {
    const [records, running] = await Promise.all([this.ctx.store.listInstances(), this.ctx.provider.list()]);
    const alive = new Map(running.map((p) => [p.id, p]));
    for (const record of records) {
      const live = alive.get(record.id);
      if (!live || record.state === 'stopping' || record.state === 'deleted' || record.state === 'failed') {
        if (live) await this.ctx.provider.delete(record.id, { graceMs: this.ctx.deleteGraceMs });
        await this.ctx.store.deleteInstance(record.id);
        this.ctx.events.record('instance.deleted', `${record.id} no longer exists in the provider; forgotten`, { instanceId: record.id });
        continue;
      }
      alive.delete(record.id);
      const now = Date.now();
      // Protection and a drain in progress outlive the hub: they are in the store.
      const drainDeadlineMs = !record.draining ? 0 : record.drainDeadline ? Date.parse(record.drainDeadline) : Number.POSITIVE_INFINITY;
      const view: InstanceView = {
        ...blankView, id: record.id, state: 'unreachable', address: live.address, created: record.created, details: live.details,
        detail: 'waiting for its agent to reconnect', unreachableSince: new Date(now).toISOString(),
        protected: record.protected, draining: record.draining, drainDeadline: record.drainDeadline,
      };
      this.entries.set(record.id, {
        view, joinTokenHash: record.joinTokenHash, lastBeatMs: now, unreachableSinceMs: now, drainDeadlineMs, drainExpired: false, removing: false,
      });
      const connection = this.ctx.registry.get(record.id);
      if (connection) await this.onJoined(connection);
    }
    for (const orphan of alive.keys()) {
      this.ctx.log.warn({ instance: orphan }, 'provider runs an instance the hub does not know; deleting it');
      await this.ctx.provider.delete(orphan, { graceMs: this.ctx.deleteGraceMs });
    }
  }

  /**
   * Creates instances until the pool has its size (instances being removed or drained do not count). Safe to call
   * while another grow is under way: each new instance is counted the moment its creation starts, so a second
   * call (a resize in between) adds only what is still missing.
   */
  async grow(): Promise<void> {
    // A draining instance is on its way out: it does not count towards the size (its replacement starts now).
    let kept = 0;
    for (const entry of this.entries.values()) if (!entry.removing && !entry.view.draining) kept++;
    const missing = this.closing ? 0 : this.desired - kept;
    await Promise.all(Array.from({ length: Math.max(0, missing) }, () => this.create()));
  }

  /** Starts watching heartbeats, repairs and drains (every heartbeat interval). */
  startMonitor(): void {
    this.monitor ??= setInterval(() => this.check(Date.now()), this.ctx.heartbeatIntervalMs);
    this.monitor.unref();
  }

  /** Stops watching (hub shutdown). Safe to call twice. */
  stopMonitor(): void {
    clearInterval(this.monitor);
    this.monitor = undefined;
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  /**
   * Stops new placements on an instance and removes it once its sessions end, or stops them at the deadline.
   * The pool creates a replacement to keep its size. Throws `InstanceNotFoundError`, `InstanceProtectedError`,
   * or `InvalidStateError` (an instance already failed or being removed).
   *
   * @example
   * pool.drain('i-3f9c', 15 * 60_000);
   */
  drain(id: string, deadlineMs: number | null = this.ctx.drainDeadlineMs): InstanceView {
    const entry = this.entries.get(id);
    if (!entry) throw new InstanceNotFoundError(id);
    if (entry.view.protected) throw new InstanceProtectedError(id);
    const { state } = entry.view;
    if (state === 'failed' || state === 'stopping' || state === 'deleted') throw new InvalidStateError(`instance ${id}`, state, 'drain it');
    // No deadline (a scale-in): the instance waits for its sessions however long they run.
    entry.drainDeadlineMs = deadlineMs === null ? Number.POSITIVE_INFINITY : Date.now() + deadlineMs;
    entry.drainExpired = false;
    entry.view = { ...entry.view, draining: true, drainDeadline: deadlineMs === null ? null : new Date(entry.drainDeadlineMs).toISOString() };
    const sessions = this.ctx.occupancy.countOn(id);
    this.ctx.events.record(
      'instance.drain',
      `draining ${id}: no new sessions; removed once its ${sessions} session(s) end${entry.view.drainDeadline ? ` or at ${entry.view.drainDeadline}` : ''}`,
      { instanceId: id, data: { sessions, deadline: entry.view.drainDeadline } },
    );
    if (state !== 'draining' && state !== 'unreachable') this.setState(id, 'draining', 'drain requested');
    else void this.persist(entry);
    this.check(Date.now());
    return entry.view;
  }

  /**
   * Marks an instance protected from removal (drain, scale-in) or lifts it. A failed instance is replaced
   * whether protected or not: it is already gone.
   *
   * @example
   * pool.protect('i-3f9c', true);
   */
  protect(id: string, on: boolean): InstanceView {
    const entry = this.entries.get(id);
    if (!entry) throw new InstanceNotFoundError(id);
    if (entry.view.protected !== on) {
      entry.view = { ...entry.view, protected: on };
      this.ctx.events.record('instance.protect', `${id} ${on ? 'protected from removal' : 'no longer protected'}`, {
        instanceId: id, data: { protected: on },
      });
      void this.persist(entry);
    }
    return entry.view;
  }

  /**
   * One pass of the health and drain rules at time `now` (epoch ms): silent agents become unreachable,
   * long-unreachable instances fail and are replaced (at most `maxShare` of the pool at once), drained
   * instances are removed.
   */
  check(now: number): void {
    if (this.closing) return;
    const silentAfter = this.ctx.repair.missedHeartbeats * this.ctx.heartbeatIntervalMs;
    const overdue: Entry[] = [];
    let repairing = 0;
    for (const entry of this.entries.values()) {
      const { id, state } = entry.view;
      if (entry.removing || state === 'failed') {
        repairing++;
        continue;
      }
      if ((state === 'ready' || state === 'unhealthy' || state === 'draining') && now - entry.lastBeatMs > silentAfter) {
        this.markUnreachable(entry, now, `missed ${this.ctx.repair.missedHeartbeats} heartbeats`);
        this.ctx.registry.get(id)?.close(4004, 'missed heartbeats');
      }
      if (entry.view.state === 'unreachable' && now - entry.unreachableSinceMs >= this.ctx.repair.failAfterMs) overdue.push(entry);
      if (state === 'starting' && now - Date.parse(entry.view.created) >= this.ctx.repair.joinTimeoutMs) {
        // Its agent never joined (crashed at start, cannot reach the hub): the same repair as a lost instance.
        entry.unreachableSinceMs = Date.parse(entry.view.created);
        overdue.push(entry);
      }
      if (entry.drainDeadlineMs > 0) {
        if (!entry.drainExpired && now >= entry.drainDeadlineMs && this.ctx.occupancy.countOn(id) > 0) {
          entry.drainExpired = true;
          this.emit('drainExpired', id);
        }
        const gone = entry.view.state === 'draining' || entry.view.state === 'unreachable';
        if (gone && !entry.view.protected && this.ctx.occupancy.countOn(id) === 0) {
          void this.retire(entry, 'drained: no sessions left');
        }
      }
    }
    const allowed = Math.max(1, Math.floor(this.ctx.repair.maxShare * this.desired));
    overdue.sort((a, b) => a.unreachableSinceMs - b.unreachableSinceMs);
    for (const entry of overdue) {
      if (repairing >= allowed) {
        if (!this.postponed.has(entry.view.id)) {
          this.postponed.add(entry.view.id);
          this.ctx.events.record(
            'instance.repair_postponed',
            `${entry.view.id} is overdue for repair but ${repairing} of at most ${allowed} repair(s) are under way`,
            { instanceId: entry.view.id, data: { repairing, allowed } },
          );
        }
        continue;
      }
      repairing++;
      const reason = entry.view.state === 'starting'
        ? `its agent did not join within ${Math.round(this.ctx.repair.joinTimeoutMs / 1000)} s`
        : `unreachable for ${Math.round((now - entry.unreachableSinceMs) / 1000)} s`;
      void this.fail(entry, reason);
    }
  }

  list(): InstanceView[] {
    return [...this.entries.values()].map((e) => e.view);
  }

  get(id: string): InstanceView | undefined {
    return this.entries.get(id)?.view;
  }

  /** Milliseconds since each instance's last heartbeat (for metrics). */
  heartbeatAges(now = Date.now()): Array<[id: string, ageMs: number]> {
    return [...this.entries.values()].map((e) => [e.view.id, Math.max(0, now - e.lastBeatMs)]);
  }

  /** The pool's configured size. */
  get size(): number {
    return this.desired;
  }

  /**
   * Sets the pool's size. Growing creates instances; shrinking drains the instances with the fewest sessions
   * (never a protected one), with no deadline: their sessions end on their own and nothing is killed. Returns
   * the instances it started draining (fewer than asked when the rest are protected). `prefer` lists instances
   * to drain first, in order (the autoscaler's `scaleInPolicy`).
   *
   * @example
   * pool.resize(1); // ['i-3f9c2a']
   */
  resize(size: number, prefer: readonly string[] = []): string[] {
    this.desired = size;
    const draining: string[] = [];
    let kept = 0;
    for (const entry of this.entries.values()) if (!entry.removing && !entry.view.draining) kept++;
    if (kept > size) {
      const rank = (e: Entry): number => (e.view.state === 'ready' ? 1 : 0);
      const preferred = (e: Entry): number => (prefer.includes(e.view.id) ? prefer.indexOf(e.view.id) : prefer.length);
      const candidates = [...this.entries.values()]
        .filter((e) => !e.removing && !e.view.protected && !e.view.draining && e.view.state !== 'failed')
        .sort((a, b) => preferred(a) - preferred(b) || this.ctx.occupancy.countOn(a.view.id) - this.ctx.occupancy.countOn(b.view.id) || rank(a) - rank(b) || b.view.created.localeCompare(a.view.created));
      for (const entry of candidates.slice(0, kept - size)) {
        this.drain(entry.view.id, null);
        draining.push(entry.view.id);
      }
    }
    void this.grow();
    return draining;
  }

  /**
   * Ready instances (the only ones that take new sessions), oldest first. Cached between state changes: `id`,
   * `state` and `room` are current; `load` and `lastHeartbeat` may lag (read `get(id)` for those).
   */
  ready(): readonly InstanceView[] {
    this.readyCache ??= this.list().filter((v) => v.state === 'ready');
    return this.readyCache;
  }

  /** True when `token` is the join token issued to `instanceId`. */
  verifyJoin(instanceId: string, token: string): boolean {
    const entry = this.entries.get(instanceId);
    return entry !== undefined && sameSecret(entry.joinTokenHash, hashSecret(token));
  }

  /** Deletes every instance (their agents stop their servers first). Safe to call twice. */
  stopAll(): Promise<void> {
    this.stopMonitor();
    this.unwatchGone?.();
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
      view: { ...blankView, id, state: 'starting', created },
      lastBeatMs: Date.now(), unreachableSinceMs: 0, drainDeadlineMs: 0, drainExpired: false, removing: false,
    };
    this.entries.set(id, entry);
    await this.persist(entry);
    this.ctx.events.record('instance.created', `creating instance ${id}`, { instanceId: id, data: { provider: this.ctx.provider.type } });
    try {
      const made = await this.ctx.provider.create({ id, hubUrl: this.ctx.hubUrl, joinToken, settings: this.ctx.agentSettings });
      entry.view = { ...entry.view, address: made.address || null, details: made.details };
      await this.persist(entry);
    } catch (error) {
      const message = (error as Error).message;
      const code = typeof (error as { code?: unknown }).code === 'string' ? (error as { code: string }).code : 'provider_failed';
      this.ctx.log.error({ instance: id, code, err: message }, 'provider could not create the instance');
      this.setState(id, 'stopping', `provider failed: ${message}`);
      this.entries.delete(id);
      await this.ctx.store.deleteInstance(id);
      this.backOff(id, code, message);
    }
  }

  /** After a failed create: one event, then `grow` again later (doubling pauses), never a tight loop. */
  private backOff(id: string, code: string, message: string): void {
    const attempts = (this.failure?.attempts ?? 0) + 1;
    const delayMs = backoffMs(attempts - 1, CREATE_BACKOFF_MIN_MS, CREATE_BACKOFF_MAX_MS);
    this.failure = { code, message, attempts, retryAt: new Date(Date.now() + delayMs).toISOString() };
    this.ctx.events.record('instance.create_failed', `the provider could not create ${id}: ${message} (attempt ${attempts}; next try in ${Math.round(delayMs / 1000)} s)`, {
      instanceId: id, data: { code, attempts, retryInMs: delayMs },
    });
    if (this.closing || this.retryTimer) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.grow();
    }, delayMs);
    this.retryTimer.unref();
  }

  /** Fails an instance: its sessions are lost, the provider deletes what is left of it, a replacement is made. */
  private async fail(entry: Entry, reason: string): Promise<void> {
    const { id } = entry.view;
    entry.removing = true;
    this.postponed.delete(id);
    this.setState(id, 'failed', reason);
    this.ctx.events.record('instance.failed', `${id} failed (${reason}); its sessions are lost and it is being replaced`, {
      instanceId: id, data: { reason, sessions: this.ctx.occupancy.countOn(id) },
    });
    this.emit('lost', id, reason);
    await this.replace(id);
  }

  /** Removes a drained instance and makes a replacement. */
  private async retire(entry: Entry, reason: string): Promise<void> {
    if (entry.removing) return;
    entry.removing = true;
    this.setState(entry.view.id, 'stopping', reason);
    await this.replace(entry.view.id);
  }

  private async replace(id: string): Promise<void> {
    try {
      await this.remove(id);
    } catch (error) {
      this.ctx.log.error({ instance: id, err: (error as Error).message }, 'could not delete an instance');
    }
    // While creates back off, the retry timer grows the pool (never a tight create → fail → create loop).
    if (!this.closing && !this.retryTimer) await this.grow();
  }

  private async remove(id: string): Promise<void> {
    const entry = this.entries.get(id);
    if (!entry) return;
    entry.removing = true;
    if (entry.view.state !== 'stopping') this.setState(id, 'stopping');
    try {
      await this.ctx.provider.delete(id, { graceMs: this.ctx.deleteGraceMs });
    } finally {
      // An agent that outlives its instance (a joined machine) learns it is gone, stops its servers, joins anew.
      this.ctx.registry.get(id)?.close(4003, 'instance removed');
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
    if (entry.removing) {
      connection.close(4003, 'instance is being removed');
      return;
    }
    const { hello } = connection;
    const healthy = hello.checks.share && hello.checks.jupyter && hello.checks.identity !== false;
    entry.lastBeatMs = Date.now();
    entry.unreachableSinceMs = 0;
    this.postponed.delete(connection.instanceId);
    // An instance made it all the way: creates work again.
    this.failure = undefined;
    entry.view = {
      ...entry.view, address: hello.address, capacity: hello.capacity, sshPort: hello.sshPort, sshHostKey: hello.sshHostKey, isolation: hello.isolation,
      lastHeartbeat: new Date(entry.lastBeatMs).toISOString(), detail: healthy ? null : (hello.checks.detail ?? 'a health check failed'),
      room: roomOf(hello.capacity, this.ctx.capacity), unreachableSince: null,
    };
    this.readyCache = undefined;
    connection.on('heartbeat', (beat) => {
      entry.lastBeatMs = Date.now();
      entry.view = { ...entry.view, load: beat.load, lastHeartbeat: new Date(entry.lastBeatMs).toISOString() };
      if (beat.checks) this.onChecks(entry, beat.checks);
    });
    await this.persist(entry);
    const state = entry.view.state;
    if (entry.drainDeadlineMs > 0) {
      if (state !== 'draining') this.setState(connection.instanceId, 'draining', 'agent rejoined while draining');
    } else if (state !== 'stopping' && state !== 'draining') {
      this.setState(connection.instanceId, healthy ? 'ready' : 'unhealthy', entry.view.detail ?? undefined);
    }
    this.emit('joined', connection.instanceId, hello, connection);
  }

  /**
   * Checks an agent reports after `hello` (a share it mounts, probed periodically): a ready instance whose check fails
   * becomes `unhealthy` (no new sessions; its sessions keep running), and `ready` again once they pass.
   */
  private onChecks(entry: Entry, checks: HelloMessage['checks']): void {
    const healthy = checks.share && checks.jupyter && checks.identity !== false;
    const detail = healthy ? null : (checks.detail ?? 'a health check failed');
    if (entry.view.detail === detail) return;
    entry.view = { ...entry.view, detail };
    this.readyCache = undefined;
    const { state, id } = entry.view;
    if (state === 'ready' && !healthy) this.setState(id, 'unhealthy', detail ?? undefined);
    else if (state === 'unhealthy' && healthy) this.setState(id, 'ready', 'its checks pass again');
    else if (state === 'unhealthy' && detail) {
      this.ctx.events.record('instance.unhealthy', `${id}: ${detail}`, { instanceId: id });
    }
  }

  private onLeft(instanceId: string): void {
    const entry = this.entries.get(instanceId);
    if (!entry || this.ctx.registry.get(instanceId)) return;
    this.markUnreachable(entry, Date.now(), 'agent connection lost');
  }

  private markUnreachable(entry: Entry, now: number, reason: string): void {
    const { state } = entry.view;
    if (entry.removing || state === 'stopping' || state === 'deleted' || state === 'unreachable' || state === 'failed') return;
    entry.unreachableSinceMs = now;
    entry.view = { ...entry.view, unreachableSince: new Date(now).toISOString() };
    this.setState(entry.view.id, 'unreachable', reason);
  }

  private setState(id: string, to: InstanceState, detail?: string): void {
    const entry = this.entries.get(id);
    if (!entry) return;
    const from = entry.view.state;
    if (from === to) return;
    nextInstanceState(from, to);
    entry.view = { ...entry.view, state: to };
    this.readyCache = undefined;
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
      created: view.created, protected: view.protected, draining: view.draining, drainDeadline: view.drainDeadline,
    });
  }
}
