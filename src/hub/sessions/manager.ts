// Starts, tracks and stops users' servers: placement (profiles, strategy, stickiness, the wait queue and the
// resources reserved on each instance), the agent call, progress, routes, sessions lost with their instance,
// drain notices, and re-adoption of servers that outlived a hub restart.
import { EventEmitter } from 'node:events';
import type { Logger } from '../../lib/log.js';
import type { HelloMessage, SessionResources, StartServerResult } from '../../protocol/agent.js';
import { Ledger, type Allocation } from './ledger.js';
import type { Route } from '../../protocol/gateway.js';
import type { AgentConnection } from '../agents/connection.js';
import type { AgentRegistry } from '../agents/registry.js';
import { newSecret } from '../auth/credentials.js';
import { ProfileError, ServerStartError } from '../errors.js';
import type { EventLog } from '../events.js';
import type { InstancePool, InstanceView } from '../instances/pool.js';
import type { SessionRecord, Store, UserRecord } from '../store/types.js';
import {
  decidePlacement, neverFitsReason, type Candidate, type Usage, type PlacementDecision, type PlacementStrategy, type ResourceRequest,
} from './placement.js';
import { nextSessionState, type SessionState, type StopCause } from './state.js';

/** One step of a server's start, in JupyterHub's progress-event shape. */
export interface ProgressEvent {
  readonly progress: number;
  readonly message: string;
  readonly ready?: boolean;
  readonly failed?: boolean;
  /** Where the browser goes once ready (`/user/<name>/`). */
  readonly url?: string;
  /**
   * The start step this event marks, for timing: `requested`, `queued`, `placed`, `forked` or `exec` (the server's
   * process exists, forked from the instance's fork server or exec'd), `ready`, `failed`.
   */
  readonly phase?: string;
  /** Milliseconds since the start was requested. */
  readonly elapsed_ms?: number;
}

/** What the session manager needs from the hub. */
export interface SessionManagerContext {
  readonly store: Store;
  readonly pool: InstancePool;
  readonly registry: AgentRegistry;
  readonly events: EventLog;
  readonly log: Logger;
  readonly routes: { publish(route: Route): void; unpublish(user: string, sessionId: string): void };
  /** Longest a start may take once placed, in ms. */
  readonly startTimeoutMs: number;
  /** How new sessions pick an instance. */
  readonly strategy: PlacementStrategy;
  /** Named resource requests (pool.yaml `pool.profiles`). */
  readonly profiles: Readonly<Record<string, ProfileRequest>>;
  /** Profile used when a request names none; null: reserve nothing but a session slot. */
  readonly defaultProfile: string | null;
  /** Longest a request may wait in the queue for room, in ms. */
  readonly queueTimeoutMs: number;
  /** Where placement timings go (Prometheus). */
  readonly metrics: PlacementObserver;
  /** Told each time a server is being stopped, with who stopped it (for the stop metric). */
  readonly stopping?: (cause: StopCause) => void;
}

/** A profile as placement needs it. */
export interface ProfileRequest extends ResourceRequest {
  readonly description?: string;
  /** The session's process limit on its instance (its cgroup's pids limit); absent: the agent's default. */
  readonly processes?: number;
}

/** Receives placement measurements. */
export interface PlacementObserver {
  /** One placement decision took `ms`. */
  decision(ms: number, outcome: PlacementDecision['outcome']): void;
  /** A request waited `ms` in the queue before it was placed (or gave up). */
  waited(ms: number, outcome: 'placed' | 'abandoned'): void;
}

/** Options of `SessionManager.start`. */
export interface StartOptions {
  /** Profile name from pool.yaml; the default profile when absent. */
  readonly profile?: string;
}

/** A request waiting for room, as `GET /hub/api/queue` shows it. */
export interface QueueEntry {
  /** 1 = next. */
  readonly position: number;
  readonly sessionId: string;
  readonly user: string;
  readonly profile: string | null;
  /** ISO-8601. */
  readonly since: string;
  readonly waitedMs: number;
  /** Why it waits (the last placement decision). */
  readonly reason: string;
}

interface Waiter {
  readonly live: Live;
  readonly request: ResourceRequest;
  readonly profile: string | null;
  readonly sinceMs: number;
  reason: string;
  position: number;
  resolve(placed: Placed): void;
  reject(error: Error): void;
}

interface Placed {
  readonly instance: InstanceView;
  readonly gpus: readonly number[];
}

interface Live {
  record: SessionRecord;
  /** The profile it was started with (null: none named; unknown after a hub restart). */
  profile: string | null;
  progress: ProgressEvent[];
  /** Settles when the start has ended (ready or failed). */
  started: Promise<void>;
}

/** Events of the session manager. */
export interface SessionManagerEvents {
  /** A progress step for a session (the last one has `ready` or `failed`). */
  progress: [sessionId: string, event: ProgressEvent];
}

/** The URL prefix of a user's server behind the gateway. */
export const userPrefix = (name: string): string => `/user/${name}/`;

const ACTIVE = new Set<string>(['pending', 'starting', 'running', 'stopping']);

/**
 * Users' servers: places each start on an instance with room (or queues it), tracks it, publishes its route, stops it.
 *
 * @example
 * const sessions = new SessionManager({ store, pool, registry, events, log, startTimeoutMs: 90_000, ...sessionSettings(config), routes });
 * const session = await sessions.start(user); // queued or placed on an instance
 * await sessions.stop(user.name);
 */
export class SessionManager extends EventEmitter<SessionManagerEvents> {
  private readonly live = new Map<string, Live>();
  private readonly byUser = new Map<string, string>();
  /** Sessions whose `startServer` request is in flight in this hub process. */
  private readonly inFlight = new Set<string>();
  /** Resources reserved per instance, and per session. */
  private readonly ledger = new Ledger();
  /** Requests waiting for room, oldest first. */
  private readonly queue: Waiter[] = [];
  private pumpScheduled = false;
  /** Messages for users about their session (e.g. its instance is draining), by session id. */
  private readonly notices = new Map<string, string>();
  /** Queued sessions stopped by request: their start ends quietly (the stop records the outcome). */
  private readonly withdrawn = new Set<string>();
  private cullView: ((sessionId: string) => { notice: string | null; cullAt: string | null; saveRequested: boolean }) | undefined;

  constructor(private readonly ctx: SessionManagerContext) {
    super();
    this.setMaxListeners(0);
    ctx.pool.on('joined', (id, hello, connection) => void this.adopt(id, hello, connection));
    ctx.pool.on('lost', (id, reason) => void this.onInstanceLost(id, reason));
    ctx.pool.on('drainExpired', (id) => void this.onDrainExpired(id));
    ctx.pool.on('state', (view) => {
      if (view.state === 'ready') this.schedulePump();
      if (view.state === 'draining') this.noticeDrain(view);
    });
  }

  /** The profiles users may pick, by name. */
  profiles(): Readonly<Record<string, ProfileRequest>> {
    return this.ctx.profiles;
  }

  /** Requests waiting for room, in queue order. */
  queued(now = Date.now()): QueueEntry[] {
    return this.queue.map((w, i) => ({
      position: i + 1, sessionId: w.live.record.id, user: w.live.record.user, profile: w.profile,
      since: new Date(w.sinceMs).toISOString(), waitedMs: now - w.sinceMs, reason: w.reason,
    }));
  }

  /** 1-based queue position of a waiting session; undefined when it is not queued. */
  queuePosition(sessionId: string): number | undefined {
    const index = this.queue.findIndex((w) => w.live.record.id === sessionId);
    return index < 0 ? undefined : index + 1;
  }

  /** Queue position, notices (drain, idle cull) and the culler's fields of a session, for its server model. */
  poolFieldsOf(sessionId: string): { queuePosition: number | null; notice: string | null; cullAt: string | null; saveRequested: boolean } {
    const cull = this.cullView?.(sessionId);
    const notice = [this.notices.get(sessionId), cull?.notice].filter((n): n is string => typeof n === 'string' && n !== '').join(' ');
    return { queuePosition: this.queuePosition(sessionId) ?? null, notice: notice || null, cullAt: cull?.cullAt ?? null, saveRequested: cull?.saveRequested ?? false };
  }

  /**
   * Shows the idle culler's warning in server models (set once by the hub).
   * @internal
   */
  showCullFields(view: (sessionId: string) => { notice: string | null; cullAt: string | null; saveRequested: boolean }): void {
    this.cullView = view;
  }

  /** Running sessions with the profile they were started with (for the idle culler). */
  running(): Array<{ record: SessionRecord; profile: string | null }> {
    const out: Array<{ record: SessionRecord; profile: string | null }> = [];
    for (const live of this.live.values()) if (live.record.state === 'running') out.push({ record: live.record, profile: live.profile });
    return out;
  }

  /** A message for the session's user (e.g. "this instance is draining"), if any. */
  noticeOf(sessionId: string): string | undefined {
    return this.notices.get(sessionId);
  }

  /** What a session reserved and where, if placed. */
  allocationOf(sessionId: string): Allocation | undefined {
    return this.ledger.allocationOf(sessionId);
  }

  /**
   * Resolves a profile name to what it reserves; throws `ProfileError` for an unknown profile or one that no
   * instance of the pool can ever satisfy (judged on instances whose capacity is known).
   *
   * @example
   * sessions.resolveProfile('gpu'); // { name: 'gpu', request: { cpu: 0, memoryBytes: 0, gpus: 1 } }
   */
  resolveProfile(name: string | undefined): { name: string | null; request: ResourceRequest } {
    const chosen = name ?? this.ctx.defaultProfile;
    if (chosen === null) return { name: null, request: { cpu: 0, memoryBytes: 0, gpus: 0 } };
    const profile = this.ctx.profiles[chosen];
    if (!profile) {
      const known = Object.keys(this.ctx.profiles);
      throw new ProfileError(chosen, `no profile named "${chosen}" (profiles: ${known.length ? known.join(', ') : 'none are configured'})`);
    }
    const request = { cpu: profile.cpu, memoryBytes: profile.memoryBytes, gpus: profile.gpus };
    const rooms = this.ctx.pool.list().filter((v) => v.room && v.state !== 'failed' && v.state !== 'stopping' && v.state !== 'deleted');
    const reasons = rooms.map((v) => (v.room ? neverFitsReason(v.room, request) : undefined));
    if (rooms.length > 0 && reasons.every((r) => r !== undefined)) {
      throw new ProfileError(chosen, `profile "${chosen}" can never fit this pool: it ${reasons[0] ?? 'does not fit'}`);
    }
    return { name: chosen, request };
  }

  /** Loads the sessions that were active when the hub stopped (before agents rejoin, so they can be re-adopted). */
  async load(): Promise<void> {
    for (const record of await this.ctx.store.listActiveSessions()) {
      if (record.state === 'pending' || !record.instanceId) {
        await this.ctx.store.updateSession(record.id, { state: 'failed', stopped: new Date().toISOString(), reason: 'the hub restarted before it was placed' });
        continue;
      }
      this.track(record, Promise.resolve());
      this.reserve(record.id, record.instanceId, { cpu: 0, memoryBytes: 0, gpus: [] });
    }
  }

  /** Fails loaded sessions whose instance no longer exists (call after the pool is restored). */
  async prune(): Promise<void> {
    for (const live of [...this.live.values()]) {
      if (live.record.instanceId && !this.ctx.pool.get(live.record.instanceId)) {
        await this.transition(live, 'failed', 'its instance was gone after a hub restart');
      }
    }
  }

  /** The user's active session, if any. */
  active(user: string): Live['record'] | undefined {
    const id = this.byUser.get(user);
    return id ? this.live.get(id)?.record : undefined;
  }

  /** Active sessions by state (for metrics). */
  activeCount(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const { record } of this.live.values()) counts[record.state] = (counts[record.state] ?? 0) + 1;
    return counts;
  }

  /** Progress so far of a session (for replay to a late subscriber). */
  progressOf(sessionId: string): readonly ProgressEvent[] {
    return this.live.get(sessionId)?.progress ?? [];
  }

  /** What is reserved on an instance now (the autoscaler counts free slots with it). */
  usageOn(instanceId: string): Readonly<Usage> {
    return this.ledger.usageOf(instanceId);
  }

  /**
   * Tells every queued request why it still waits (a progress line: the start page shows it, the SSH front door
   * puts it in the banner). The autoscaler uses it while it wakes the pool.
   *
   * @example
   * sessions.tellQueued('Waking the pool: starting an instance (12 s so far)');
   */
  tellQueued(message: string): void {
    for (const waiter of this.queue) {
      // The autoscaler decides often; a waiter hears a line once, and again only when it changes.
      if (waiter.live.progress[waiter.live.progress.length - 1]?.message !== message) this.report(waiter.live, { progress: 5, message });
    }
  }

  /** Sessions per instance (active ones). */
  countOn(instanceId: string): number {
    return this.ledger.sessionsOn(instanceId);
  }

  /** Every route the gateway should have now. */
  routes(): Route[] {
    const routes: Route[] = [];
    for (const { record } of this.live.values()) {
      if (record.state === 'running' && record.url && record.instanceId) {
        routes.push({ user: record.user, sessionId: record.id, instanceId: record.instanceId, target: record.url, token: record.token });
      }
    }
    return routes;
  }

  /**
   * Starts the user's server unless one is active; resolves with the session right away (the start goes on).
   *
   * @example
   * const session = await sessions.start(user);
   * await sessions.settled(session.id, 10_000); // true when it finished starting (or failed) in time
   */
  async start(user: UserRecord, options: StartOptions = {}): Promise<SessionRecord> {
    const current = this.active(user.name);
    if (current && current.state !== 'stopping') return current;
    const { name: profile, request } = this.resolveProfile(options.profile);
    const sticky = current?.instanceId ?? undefined;
    if (current) await this.settled(current.id, this.ctx.startTimeoutMs);
    const record: SessionRecord = {
      id: `s-${newSecret(6).replace(/[^A-Za-z0-9]/g, 'x')}`, user: user.name, name: '', instanceId: null, state: 'pending', url: null,
      token: newSecret(), started: new Date().toISOString(), lastActivity: null, stopped: null, reason: null, profile, extendedUntil: null,
      stopCause: null,
    };
    await this.ctx.store.createSession(record);
    let done!: () => void;
    const started = new Promise<void>((resolve) => (done = resolve));
    const live = this.track(record, started);
    live.profile = profile;
    this.report(live, { progress: 0, message: 'Server requested', phase: 'requested' });
    void this.run(live, user, { profile, request, sticky }).finally(done);
    return live.record;
  }

  /** Waits until a session's start has ended; true when it did within `timeoutMs`. */
  async settled(sessionId: string, timeoutMs: number): Promise<boolean> {
    const live = this.live.get(sessionId);
    if (!live) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
    const result = await Promise.race([live.started.then(() => true), timeout]);
    clearTimeout(timer);
    return result;
  }

  /**
   * Stops the user's server; resolves once it is stopped. A user with no server is a no-op. `cause` is kept on the
   * session record (who stopped it), `reason` is for people.
   */
  async stop(user: string, reason = 'stopped by request', cause: StopCause = 'request'): Promise<void> {
    const id = this.byUser.get(user);
    const live = id ? this.live.get(id) : undefined;
    if (!live) return;
    if (live.record.state === 'pending') {
      this.withdrawn.add(live.record.id);
      this.dequeue(live.record.id, new ServerStartError(user, `stopped while waiting for an instance (${reason})`));
      await this.transition(live, 'stopped', reason, cause);
      return;
    }
    await live.started;
    if (!ACTIVE.has(live.record.state) || live.record.state === 'stopping') return;
    await this.transition(live, 'stopping', reason, cause);
    const connection = live.record.instanceId ? this.ctx.registry.get(live.record.instanceId) : undefined;
    try {
      await connection?.request('stopServer', { sessionId: live.record.id }, 30_000);
    } catch (error) {
      this.ctx.log.warn({ session: live.record.id, err: (error as Error).message }, 'agent could not confirm the stop');
    }
    if (live.record.state === 'stopping') await this.transition(live, 'stopped', reason);
  }

  /** Stops every server (hub shutdown with the pool). */
  async stopAll(reason: string): Promise<void> {
    await Promise.allSettled([...this.byUser.keys()].map((user) => this.stop(user, reason, 'shutdown')));
  }

  /**
   * Keeps (or clears, with null) an active session's extension on its record, so it outlives a hub restart. The
   * idle culler decides with it; this only stores it.
   *
   * @example
   * await sessions.keepExtension(record.id, '2026-01-05T12:00:00.000Z');
   */
  async keepExtension(sessionId: string, until: string | null): Promise<void> {
    const live = this.live.get(sessionId);
    if (live && live.record.extendedUntil !== until) await this.update(live, { extendedUntil: until });
  }

  private track(record: SessionRecord, started: Promise<void>): Live {
    const live: Live = { record, profile: record.profile, progress: [], started };
    this.live.set(record.id, live);
    this.byUser.set(record.user, record.id);
    return live;
  }

  private async run(
    live: Live,
    user: UserRecord,
    want: { profile: string | null; request: ResourceRequest; sticky: string | undefined },
  ): Promise<void> {
    try {
      const { instance, gpus } = await this.place(live, want);
      const processes = want.profile === null ? undefined : this.ctx.profiles[want.profile]?.processes;
      const resources: SessionResources = {
        cpu: want.request.cpu, memoryBytes: want.request.memoryBytes, gpus: [...gpus], ...(processes === undefined ? {} : { pids: processes }),
      };
      const deadline = Date.now() + this.ctx.startTimeoutMs;
      if (live.record.state !== 'pending') {
        this.release(live.record.id);
        return;
      }
      await this.update(live, { instanceId: instance.id });
      await this.transition(live, 'starting', `placed on ${instance.id}`);
      this.report(live, { progress: 10, message: `Placed on instance ${instance.id}`, phase: 'placed' });
      const connection = this.ctx.registry.get(instance.id);
      if (!connection) throw new ServerStartError(user.name, `instance ${instance.id} lost its agent before the server started`);
      const onProgress = (p: { sessionId: string; percent: number; message: string; phase?: string | undefined }) => {
        if (p.sessionId !== live.record.id) return;
        this.report(live, { progress: Math.max(10, Math.min(95, p.percent)), message: p.message, ...(p.phase === undefined ? {} : { phase: p.phase }) });
      };
      connection.on('progress', onProgress);
      this.inFlight.add(live.record.id);
      let result: StartServerResult;
      try {
        result = await connection.request(
          'startServer',
          {
            sessionId: live.record.id, user: { name: user.name, uid: user.uid, gid: user.gid }, baseUrl: userPrefix(user.name),
            token: live.record.token, resources,
          },
          Math.max(1000, deadline - Date.now()) + 5000,
        );
      } finally {
        connection.off('progress', onProgress);
        this.inFlight.delete(live.record.id);
      }
      if ((live.record.state as SessionState) !== 'starting') {
        void connection.request('stopServer', { sessionId: live.record.id }, 30_000).catch(() => undefined);
        return;
      }
      await this.update(live, { url: result.url, lastActivity: new Date().toISOString() });
      await this.transition(live, 'running', `Jupyter answers at ${instance.id}`);
    } catch (error) {
      if (this.withdrawn.delete(live.record.id)) return;
      const message = error instanceof Error ? error.message : String(error);
      if (ACTIVE.has(live.record.state) && live.record.state !== 'stopping') await this.transition(live, 'failed', message);
    }
  }

  /** Places a session now, or queues it until room frees up (or `queueTimeoutMs` passes). Reserves what it got. */
  private async place(
    live: Live,
    want: { profile: string | null; request: ResourceRequest; sticky: string | undefined },
  ): Promise<Placed> {
    const decision = this.decide(want.request, want.sticky);
    if (decision.outcome === 'placed' && this.queue.length === 0) return this.commit(live, want, decision, 0);
    const sinceMs = Date.now();
    return new Promise<Placed>((resolve, reject) => {
      const timer = setTimeout(() => {
        const message = `no instance had room for ${want.profile ? `profile "${want.profile}"` : 'the server'} within ${Math.round(this.ctx.queueTimeoutMs / 1000)} s`;
        if (this.dequeue(live.record.id, new ServerStartError(live.record.user, message))) this.ctx.metrics.waited(Date.now() - sinceMs, 'abandoned');
      }, this.ctx.queueTimeoutMs);
      timer.unref();
      const waiter: Waiter = {
        live, request: want.request, profile: want.profile, sinceMs, reason: decision.reason, position: this.queue.length + 1,
        resolve: (placed) => {
          clearTimeout(timer);
          resolve(placed);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.queue.push(waiter);
      this.ctx.events.record('session.queued', `${live.record.user} waits for an instance (position ${waiter.position}): ${decision.reason}`, {
        user: live.record.user, data: { session: live.record.id, position: waiter.position, profile: want.profile, reason: decision.reason },
      });
      this.report(live, { progress: 5, message: `Waiting for an instance (position ${waiter.position})`, phase: 'queued' });
      if (decision.outcome === 'placed') this.schedulePump();
    });
  }

  /** One timed placement decision against the ready instances. */
  private decide(request: ResourceRequest, sticky: string | undefined): PlacementDecision {
    const started = performance.now();
    const decision = decidePlacement(this.candidates(), request, { strategy: this.ctx.strategy, sticky });
    this.ctx.metrics.decision(performance.now() - started, decision.outcome);
    return decision;
  }

  private candidates(): Candidate[] {
    const candidates: Candidate[] = [];
    for (const view of this.ctx.pool.ready()) {
      if (!view.room) continue;
      candidates.push({ id: view.id, room: view.room, usage: this.ledger.usageOf(view.id) });
    }
    return candidates;
  }

  /** Reserves a placement decision and records it with its reason. */
  private commit(
    live: Live,
    want: { profile: string | null; request: ResourceRequest },
    decision: Extract<PlacementDecision, { outcome: 'placed' }>,
    waitedMs: number,
  ): Placed {
    const instance = this.ctx.pool.get(decision.instanceId);
    if (!instance) throw new ServerStartError(live.record.user, `instance ${decision.instanceId} vanished during placement`);
    this.reserve(live.record.id, decision.instanceId, { cpu: want.request.cpu, memoryBytes: want.request.memoryBytes, gpus: [...decision.gpus] });
    this.ctx.events.record('session.placed', `${live.record.user} placed on ${decision.instanceId}: ${decision.reason}`, {
      user: live.record.user, instanceId: decision.instanceId,
      data: {
        session: live.record.id, strategy: this.ctx.strategy, reason: decision.reason, profile: want.profile, gpus: decision.gpus,
        considered: decision.considered, waited_ms: waitedMs, sessions_on_instance: this.countOn(decision.instanceId) - 1,
      },
    });
    return { instance, gpus: decision.gpus };
  }

  private reserve(sessionId: string, instanceId: string, resources: SessionResources): void {
    this.ledger.reserve(sessionId, instanceId, resources);
  }

  /** Frees what a session reserved; queued requests get another chance. */
  private release(sessionId: string): void {
    if (this.ledger.release(sessionId, (id) => this.ctx.pool.get(id) !== undefined)) this.schedulePump();
  }

  private schedulePump(): void {
    if (this.pumpScheduled || this.queue.length === 0) return;
    this.pumpScheduled = true;
    setImmediate(() => {
      this.pumpScheduled = false;
      this.pump();
    });
  }

  /** Gives every queued request, oldest first, a chance at the room there is now; tells the rest their position. */
  private pump(): void {
    for (let i = 0; i < this.queue.length; ) {
      const waiter = this.queue[i];
      if (!waiter) break;
      const decision = this.decide(waiter.request, undefined);
      if (decision.outcome === 'wait') {
        waiter.reason = decision.reason;
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      const waitedMs = Date.now() - waiter.sinceMs;
      this.ctx.metrics.waited(waitedMs, 'placed');
      try {
        waiter.resolve(this.commit(waiter.live, waiter, decision, waitedMs));
      } catch (error) {
        waiter.reject(error as Error);
      }
    }
    this.queue.forEach((waiter, i) => {
      if (waiter.position === i + 1) return;
      waiter.position = i + 1;
      this.report(waiter.live, { progress: 5, message: `Waiting for an instance (position ${waiter.position})`, phase: 'queued' });
    });
  }

  /** Takes a session out of the queue, failing its wait with `error`; false when it was not queued. */
  private dequeue(sessionId: string, error: Error): boolean {
    const index = this.queue.findIndex((w) => w.live.record.id === sessionId);
    if (index < 0) return false;
    const [waiter] = this.queue.splice(index, 1);
    waiter?.reject(error);
    this.schedulePump();
    return true;
  }

  /** The instance failed: its sessions are lost; their users' next request starts fresh elsewhere. */
  private async onInstanceLost(instanceId: string, reason: string): Promise<void> {
    for (const live of [...this.live.values()]) {
      if (live.record.instanceId !== instanceId || !ACTIVE.has(live.record.state) || live.record.state === 'pending') continue;
      this.ctx.events.record('session.lost', `${live.record.user}'s server was lost with instance ${instanceId} (${reason}); notebooks are safe on the share`, {
        user: live.record.user, instanceId, data: { session: live.record.id },
      });
      await this.transition(live, 'failed', `lost: instance ${instanceId} failed (${reason})`).catch((error: unknown) =>
        this.ctx.log.warn({ session: live.record.id, err: (error as Error).message }, 'could not mark a lost session'),
      );
    }
  }

  /** A draining instance's deadline passed: its remaining servers are stopped. */
  private async onDrainExpired(instanceId: string): Promise<void> {
    const users = [...this.live.values()].filter((l) => l.record.instanceId === instanceId).map((l) => l.record.user);
    await Promise.allSettled(users.map((user) => this.stop(user, `instance ${instanceId} was drained: its deadline passed`, 'drain')));
  }

  /** Tells each user on a draining instance (their server model and the event log). */
  private noticeDrain(view: InstanceView): void {
    const message = view.drainDeadline
      ? `This instance (${view.id}) is being drained for maintenance; your server will be stopped at ${view.drainDeadline}. Save your work: your next server starts on another instance, with your notebooks.`
      : `This instance (${view.id}) is being drained as the pool shrinks: your server keeps running until you stop it, and your next server starts on another instance, with your notebooks.`;
    for (const live of this.live.values()) {
      if (live.record.instanceId !== view.id || this.notices.get(live.record.id) === message) continue;
      this.notices.set(live.record.id, message);
      this.ctx.events.record('session.notice', `${live.record.user}: ${message}`, { user: live.record.user, instanceId: view.id, data: { session: live.record.id } });
      // On the user's open terminals too (SSH); Jupyter pages show the server model's `notice` as a banner.
      void this.ctx.registry
        .get(view.id)
        ?.request('notify', { user: live.record.user, message }, 10_000)
        .catch((error: unknown) => this.ctx.log.warn({ user: live.record.user, err: (error as Error).message }, 'could not deliver a notice'));
    }
  }

  /** Re-attaches servers an agent reports after (re)joining; forgets sessions it no longer runs. */
  private async adopt(instanceId: string, hello: HelloMessage, connection: AgentConnection): Promise<void> {
    const reported = new Map(hello.servers.map((s) => [s.sessionId, s]));
    connection.on('serverExited', (exit) => void this.onExit(exit.sessionId, exit.code, exit.signal, exit.detail));
    for (const live of [...this.live.values()]) {
      if (live.record.instanceId !== instanceId) continue;
      const server = reported.get(live.record.id);
      reported.delete(live.record.id);
      if (this.inFlight.has(live.record.id)) continue; // its startServer request answers for it
      if (!server) {
        if (live.record.state === 'running' || live.record.state === 'starting') {
          await this.transition(live, 'failed', 'its server no longer runs on the instance');
        }
        continue;
      }
      if (live.record.state === 'starting' && server.state === 'running') {
        await this.update(live, { url: server.url });
        await this.transition(live, 'running', 'server found running after a hub restart');
        continue;
      }
      if (server.resources) this.reserve(live.record.id, instanceId, server.resources);
      if (live.record.state === 'running' && server.state === 'running') {
        if (live.record.url !== server.url) await this.update(live, { url: server.url });
        this.publish(live);
        this.ctx.events.record('session.adopted', `${live.record.user}'s server re-adopted on ${instanceId}`, {
          user: live.record.user, instanceId, data: { session: live.record.id },
        });
      }
    }
    for (const orphan of reported.values()) {
      this.ctx.log.warn({ instance: instanceId, session: orphan.sessionId }, 'agent runs a server the hub does not know; stopping it');
      void connection.request('stopServer', { sessionId: orphan.sessionId }, 30_000).catch(() => undefined);
    }
  }

  private async onExit(sessionId: string, code: number | null, signal: string | null, detail?: string): Promise<void> {
    const live = this.live.get(sessionId);
    if (!live || !ACTIVE.has(live.record.state)) return;
    const how = signal ? `signal ${signal}` : `code ${code}`;
    if (live.record.state === 'stopping') await this.transition(live, 'stopped', `server exited (${how})`);
    else if (live.record.state === 'running') await this.transition(live, 'stopped', `server exited on its own (${how})`);
    else this.ctx.log.warn({ session: sessionId, detail }, 'server exited while starting');
  }

  /** Moves a session to `to`; `cause` (a stop's) is kept on the record. */
  private async transition(live: Live, to: SessionState, reason: string, cause?: StopCause): Promise<void> {
    const from = live.record.state as SessionState;
    nextSessionState(from, to);
    const ended = to === 'stopped' || to === 'failed';
    await this.update(live, { state: to, ...(ended ? { stopped: new Date().toISOString(), reason } : {}), ...(cause ? { stopCause: cause } : {}) });
    if (cause) this.ctx.stopping?.(cause);
    this.ctx.events.record('session.state', `${live.record.user}: ${from} → ${to} (${reason})`, {
      user: live.record.user, instanceId: live.record.instanceId ?? undefined, data: { session: live.record.id, from, to },
    });
    if (to === 'running') {
      this.publish(live);
      this.report(live, { progress: 100, message: 'Server ready', ready: true, url: userPrefix(live.record.user), phase: 'ready' });
    }
    if (from === 'running') this.ctx.routes.unpublish(live.record.user, live.record.id);
    if (to === 'failed' && from !== 'running') this.report(live, { progress: 100, message: `Start failed: ${reason}`, failed: true, phase: 'failed' });
    if (ended) {
      this.release(live.record.id);
      this.notices.delete(live.record.id);
      this.live.delete(live.record.id);
      if (this.byUser.get(live.record.user) === live.record.id) this.byUser.delete(live.record.user);
    }
  }

  private publish(live: Live): void {
    const { record } = live;
    if (record.url && record.instanceId) {
      this.ctx.routes.publish({ user: record.user, sessionId: record.id, instanceId: record.instanceId, target: record.url, token: record.token });
    }
  }

  private async update(live: Live, patch: Parameters<Store['updateSession']>[1]): Promise<void> {
    live.record = await this.ctx.store.updateSession(live.record.id, patch);
  }

  private report(live: Live, step: ProgressEvent): void {
    const startedMs = Date.parse(live.record.started);
    const event: ProgressEvent = Number.isFinite(startedMs) ? { ...step, elapsed_ms: Math.max(0, Date.now() - startedMs) } : step;
    live.progress.push(event);
    this.emit('progress', live.record.id, event);
  }
}
