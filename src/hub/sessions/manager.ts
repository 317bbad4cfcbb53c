// Starts, tracks and stops users' servers: placement, the agent call, progress, routes, and re-adoption
// of servers that outlived a hub restart.
import { EventEmitter } from 'node:events';
import type { Logger } from '../../lib/log.js';
import type { HelloMessage, StartServerResult } from '../../protocol/agent.js';
import type { Route } from '../../protocol/gateway.js';
import type { AgentConnection } from '../agents/connection.js';
import type { AgentRegistry } from '../agents/registry.js';
import { newSecret } from '../auth/credentials.js';
import { ServerStartError } from '../errors.js';
import type { EventLog } from '../events.js';
import type { InstancePool, InstanceView } from '../instances/pool.js';
import type { SessionRecord, Store, UserRecord } from '../store/types.js';
import { choosePlacement } from './placement.js';
import { nextSessionState, type SessionState } from './state.js';

/** One step of a server's start, in JupyterHub's progress-event shape. */
export interface ProgressEvent {
  readonly progress: number;
  readonly message: string;
  readonly ready?: boolean;
  readonly failed?: boolean;
  /** Where the browser goes once ready (`/user/<name>/`). */
  readonly url?: string;
}

/** What the session manager needs from the hub. */
export interface SessionManagerContext {
  readonly store: Store;
  readonly pool: InstancePool;
  readonly registry: AgentRegistry;
  readonly events: EventLog;
  readonly log: Logger;
  readonly routes: { publish(route: Route): void; unpublish(user: string, sessionId: string): void };
  /** Longest a start may take, placement wait included, in ms. */
  readonly startTimeoutMs: number;
}

interface Live {
  record: SessionRecord;
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

export class SessionManager extends EventEmitter<SessionManagerEvents> {
  private readonly live = new Map<string, Live>();
  private readonly byUser = new Map<string, string>();
  /** Sessions whose `startServer` request is in flight in this hub process. */
  private readonly inFlight = new Set<string>();

  constructor(private readonly ctx: SessionManagerContext) {
    super();
    this.setMaxListeners(0);
    ctx.pool.on('joined', (id, hello, connection) => void this.adopt(id, hello, connection));
  }

  /** Loads the sessions that were active when the hub stopped (before agents rejoin, so they can be re-adopted). */
  async load(): Promise<void> {
    for (const record of await this.ctx.store.listActiveSessions()) {
      if (record.state === 'pending' || !record.instanceId) {
        await this.ctx.store.updateSession(record.id, { state: 'failed', stopped: new Date().toISOString(), reason: 'the hub restarted before it was placed' });
        continue;
      }
      this.track(record, Promise.resolve());
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

  /** Progress so far of a session (for replay to a late subscriber). */
  progressOf(sessionId: string): readonly ProgressEvent[] {
    return this.live.get(sessionId)?.progress ?? [];
  }

  /** Sessions per instance (active ones). */
  countOn(instanceId: string): number {
    let n = 0;
    for (const { record } of this.live.values()) if (record.instanceId === instanceId) n++;
    return n;
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
  async start(user: UserRecord): Promise<SessionRecord> {
    const current = this.active(user.name);
    if (current && current.state !== 'stopping') return current;
    if (current) await this.settled(current.id, this.ctx.startTimeoutMs);
    const record: SessionRecord = {
      id: `s-${newSecret(6).replace(/[^A-Za-z0-9]/g, 'x')}`, user: user.name, name: '', instanceId: null, state: 'pending', url: null,
      token: newSecret(), started: new Date().toISOString(), lastActivity: null, stopped: null, reason: null,
    };
    await this.ctx.store.createSession(record);
    let done!: () => void;
    const started = new Promise<void>((resolve) => (done = resolve));
    const live = this.track(record, started);
    this.report(live, { progress: 0, message: 'Server requested' });
    void this.run(live, user).finally(done);
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

  /** Stops the user's server; resolves once it is stopped. A user with no server is a no-op. */
  async stop(user: string, reason = 'stopped by request'): Promise<void> {
    const id = this.byUser.get(user);
    const live = id ? this.live.get(id) : undefined;
    if (!live) return;
    if (live.record.state === 'pending') {
      await this.transition(live, 'stopped', reason);
      return;
    }
    await live.started;
    if (!ACTIVE.has(live.record.state) || live.record.state === 'stopping') return;
    await this.transition(live, 'stopping', reason);
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
    await Promise.allSettled([...this.byUser.keys()].map((user) => this.stop(user, reason)));
  }

  private track(record: SessionRecord, started: Promise<void>): Live {
    const live: Live = { record, progress: [], started };
    this.live.set(record.id, live);
    this.byUser.set(record.user, record.id);
    return live;
  }

  private async run(live: Live, user: UserRecord): Promise<void> {
    const deadline = Date.now() + this.ctx.startTimeoutMs;
    try {
      const instance = await this.place(live, deadline);
      if (live.record.state !== 'pending') return;
      await this.update(live, { instanceId: instance.id });
      await this.transition(live, 'starting', `placed on ${instance.id}`);
      this.ctx.events.record('session.placed', `${user.name} placed on ${instance.id} (fewest sessions)`, {
        user: user.name, instanceId: instance.id, data: { session: live.record.id, sessions_on_instance: this.countOn(instance.id) - 1 },
      });
      this.report(live, { progress: 10, message: `Placed on instance ${instance.id}` });
      const connection = this.ctx.registry.get(instance.id);
      if (!connection) throw new ServerStartError(user.name, `instance ${instance.id} lost its agent before the server started`);
      const onProgress = (p: { sessionId: string; percent: number; message: string }) => {
        if (p.sessionId === live.record.id) this.report(live, { progress: Math.max(10, Math.min(95, p.percent)), message: p.message });
      };
      connection.on('progress', onProgress);
      this.inFlight.add(live.record.id);
      let result: StartServerResult;
      try {
        result = await connection.request(
          'startServer',
          { sessionId: live.record.id, user: { name: user.name, uid: user.uid, gid: user.gid }, baseUrl: userPrefix(user.name), token: live.record.token },
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
      const message = error instanceof Error ? error.message : String(error);
      if (ACTIVE.has(live.record.state) && live.record.state !== 'stopping') await this.transition(live, 'failed', message);
    }
  }

  private async place(live: Live, deadline: number): Promise<InstanceView> {
    let announced = false;
    for (;;) {
      const instance = choosePlacement(this.ctx.pool.ready(), (id) => this.countOn(id));
      if (instance) return instance;
      if (!announced) {
        this.report(live, { progress: 5, message: 'Waiting for an instance to be ready' });
        announced = true;
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || live.record.state !== 'pending') {
        throw new ServerStartError(live.record.user, 'no instance of the pool became ready in time');
      }
      await new Promise<void>((resolve) => {
        const finish = (): void => {
          clearTimeout(timer);
          this.ctx.pool.off('state', onState);
          resolve();
        };
        const onState = (view: InstanceView): void => {
          if (view.state === 'ready') finish();
        };
        const timer = setTimeout(finish, Math.min(remaining, 1000));
        this.ctx.pool.on('state', onState);
      });
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

  private async transition(live: Live, to: SessionState, reason: string): Promise<void> {
    const from = live.record.state as SessionState;
    nextSessionState(from, to);
    const ended = to === 'stopped' || to === 'failed';
    await this.update(live, { state: to, ...(ended ? { stopped: new Date().toISOString(), reason } : {}) });
    this.ctx.events.record('session.state', `${live.record.user}: ${from} → ${to} (${reason})`, {
      user: live.record.user, instanceId: live.record.instanceId ?? undefined, data: { session: live.record.id, from, to },
    });
    if (to === 'running') {
      this.publish(live);
      this.report(live, { progress: 100, message: 'Server ready', ready: true, url: userPrefix(live.record.user) });
    }
    if (from === 'running') this.ctx.routes.unpublish(live.record.user, live.record.id);
    if (to === 'failed' && from !== 'running') this.report(live, { progress: 100, message: `Start failed: ${reason}`, failed: true });
    if (ended) {
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

  private report(live: Live, event: ProgressEvent): void {
    live.progress.push(event);
    this.emit('progress', live.record.id, event);
  }
}
