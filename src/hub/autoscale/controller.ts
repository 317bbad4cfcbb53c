// The autoscaler inside the hub: samples the instance pool and the session manager, runs the engine on the wall
// clock every interval (and at once on intent: a login, a queued request), applies its decision through the
// pool's desired size (scale-in drains, never kills), and records every decision as an event and in metrics.
import { Counter, Gauge, type Registry } from 'prom-client';
import type { Logger } from '../../lib/log.js';
import type { EventLog } from '../events.js';
import type { InstancePool, InstanceView } from '../instances/pool.js';
import type { ProgressEvent, SessionManager } from '../sessions/manager.js';
import { emptyUsage, type ResourceRequest } from '../sessions/placement.js';
import { Autoscaler, type Decision, type InstanceSnapshot, type MetricsSource, type PoolSnapshot } from './engine.js';
import type { AutoscaleSettings } from './options.js';
import { freeSlots } from './slots.js';

/** What the controller needs from the hub. */
export interface AutoscaleControllerContext {
  readonly settings: AutoscaleSettings;
  readonly pool: Pick<InstancePool, 'list' | 'resize' | 'size'>;
  readonly sessions: Pick<SessionManager, 'usageOn' | 'queued' | 'active' | 'activeCount' | 'resolveProfile' | 'queuePosition' | 'tellQueued' | 'on'>;
  readonly events: EventLog;
  readonly log: Logger;
  /** Where the autoscaler's Prometheus metrics are registered. */
  readonly registry: Registry;
  /** pool.yaml `pool.capacity.maxSessions`: the slots assumed before any instance reported its room. */
  readonly maxSessions: number | null;
}

/** Kinds of intent that wake the pool. */
export type IntentKind = 'login' | 'server' | 'ssh';

/** One point of the pool's size over time (for the admin chart). */
export interface SizePoint {
  readonly atMs: number;
  /** Instances counted towards the size (not draining). */
  readonly instances: number;
  /** The size the autoscaler asked for. */
  readonly target: number;
}

/** States of the controller. `idle`: built; `running`: ticking; `closed`: stopped. */
export type AutoscaleControllerState = 'idle' | 'running' | 'closed';

const DAY_MS = 86_400_000;
/** A no-change decision with the same reason is recorded again only after this long. */
const REPEAT_MS = 10 * 60_000;

/**
 * The autoscaler as the hub runs it. Other parts of the hub talk to it through a small API:
 * - `intent(user, kind)`: someone means to work (a login); the pool wakes for them.
 * - `nudge(reason)`: decide now instead of at the next interval (the culler calls it after stopping a session,
 *   so an idle pool shrinks without waiting; the pool only ever shrinks through this controller's decisions).
 * - `decisions()` / `sizes()`: the recent decisions that changed the size, and the size over the last day.
 *
 * @example
 * const scaler = new AutoscaleController({ settings, pool, sessions, events, log, registry: metrics.registry, maxSessions: null });
 * scaler.start();
 * scaler.intent('alice', 'login');
 */
export class AutoscaleController {
  readonly engine: Autoscaler;
  private state: AutoscaleControllerState = 'idle';
  private timer: NodeJS.Timeout | undefined;
  private nudged = false;
  private readonly intents = new Map<string, number>();
  private lastSlots: number;
  private lastNoChange: { key: string; atMs: number } | undefined;
  private last: Decision | undefined;
  private readonly changes: Decision[] = [];
  private readonly points: SizePoint[] = [];
  private readonly decisionsTotal: Counter<'direction' | 'cause'>;

  constructor(private readonly ctx: AutoscaleControllerContext) {
    this.lastSlots = Math.max(1, ctx.maxSessions ?? 1);
    const source: MetricsSource = { snapshot: (now) => this.snapshot(now) };
    this.engine = new Autoscaler(ctx.settings, source, { now: () => Date.now() });
    const self = this;
    this.decisionsTotal = new Counter({
      name: 'dspool_autoscale_decisions_total', help: 'Autoscaler decisions, "none" (no change) included.', labelNames: ['direction', 'cause'],
      registers: [ctx.registry],
    });
    new Gauge({
      name: 'dspool_autoscale_target_instances', help: 'Size the autoscaler last asked for.', registers: [ctx.registry],
      collect() {
        this.set(self.last?.to ?? ctx.pool.size);
      },
    });
    new Gauge({
      name: 'dspool_autoscale_rule_value', help: 'Each rule\'s aggregated metric at the last decision (absent without enough history).',
      labelNames: ['rule', 'metric', 'direction'], registers: [ctx.registry],
      collect() {
        this.reset();
        for (const e of self.last?.evaluations ?? []) if (e.value !== null) this.set({ rule: e.rule, metric: e.metric, direction: e.direction }, e.value);
      },
    });
    new Gauge({
      name: 'dspool_autoscale_rule_threshold', help: 'Each rule\'s threshold.', labelNames: ['rule', 'metric', 'direction'], registers: [ctx.registry],
      collect() {
        this.reset();
        for (const e of self.last?.evaluations ?? []) this.set({ rule: e.rule, metric: e.metric, direction: e.direction }, e.threshold);
      },
    });
    ctx.sessions.on('progress', (sessionId: string, step: ProgressEvent) => {
      // A request that waits for room is intent too: decide at once rather than at the next interval. Only the step
      // that queues it (or moves it in the queue) counts: the autoscaler's own "Waking the pool" lines are progress
      // too, and deciding again on each of them looped once per event-loop turn for as long as a start was queued.
      if (this.state === 'running' && step.phase === 'queued' && ctx.sessions.queuePosition(sessionId) !== undefined) this.nudge('a request is queued');
    });
  }

  /** Starts ticking every interval. Throws `RangeError` when already closed. */
  start(): void {
    if (this.state === 'closed') throw new RangeError('the autoscaler is closed; cannot start it');
    if (this.state === 'running') return;
    this.state = 'running';
    this.timer = setInterval(() => this.tick(), this.ctx.settings.intervalMs);
    this.timer.unref();
    this.nudge('started');
  }

  /** Stops ticking. Safe to call twice. */
  close(): void {
    this.state = 'closed';
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * Someone means to work: keeps room for `user` for `wakeHold` (until they have a server), and decides now.
   *
   * @example
   * scaler.intent('alice', 'login');
   */
  intent(user: string, kind: IntentKind): void {
    this.intents.set(user, Date.now() + this.ctx.settings.wakeHoldMs);
    this.nudge(`${kind} by ${user}`);
  }

  /** Decides now (soon: once per event-loop turn) instead of at the next interval. */
  nudge(_reason: string): void {
    if (this.state !== 'running' || this.nudged) return;
    this.nudged = true;
    setImmediate(() => {
      this.nudged = false;
      this.tick();
    });
  }

  /** The last decision, if any. */
  lastDecision(): Decision | undefined {
    return this.last;
  }

  /** Decisions that changed the size, newest last (the last day, at most 500). */
  decisions(): readonly Decision[] {
    return this.changes;
  }

  /** The pool's size over the last day, one point a minute and one at each change. */
  sizes(): readonly SizePoint[] {
    return this.points;
  }

  /** One decision, applied and recorded. */
  tick(): Decision | undefined {
    if (this.state !== 'running') return undefined;
    let decision: Decision;
    try {
      decision = this.engine.tick();
    } catch (error) {
      this.ctx.log.error({ err: (error as Error).message }, 'autoscaler could not decide');
      return undefined;
    }
    this.last = decision;
    this.decisionsTotal.inc({ direction: decision.direction, cause: decision.cause });
    if (decision.to !== decision.from) {
      const draining = this.ctx.pool.resize(decision.to, decision.drain);
      this.changes.push(decision);
      while (this.changes.length > 500 || (this.changes[0] && this.changes[0].atMs < decision.atMs - DAY_MS)) this.changes.shift();
      this.record(decision, draining);
    } else {
      const key = `${decision.profile}|${decision.reason.replace(/[\d.]+/g, '#')}`;
      if (!this.lastNoChange || this.lastNoChange.key !== key || decision.atMs - this.lastNoChange.atMs >= REPEAT_MS) {
        this.lastNoChange = { key, atMs: decision.atMs };
        this.record(decision, []);
      }
    }
    this.tellWaking(decision);
    const point: SizePoint = { atMs: decision.atMs, instances: decision.from, target: decision.to };
    const previous = this.points[this.points.length - 1];
    if (!previous || decision.to !== decision.from || previous.target !== point.target || point.atMs - previous.atMs >= 60_000) this.points.push(point);
    while (this.points[0] && this.points[0].atMs < decision.atMs - DAY_MS) this.points.shift();
    return decision;
  }

  /** While requests wait for instances the autoscaler started, tells them so (start page, SSH banner). */
  private tellWaking(d: Decision): void {
    if (this.ctx.sessions.queued().length === 0) return;
    const starting = this.ctx.pool.list().filter((v) => v.state === 'starting');
    if (starting.length === 0) return;
    const oldest = Math.min(...starting.map((v) => Date.parse(v.created)));
    const seconds = Math.max(0, Math.round((d.atMs - oldest) / 1000));
    const what = this.ctx.pool.list().some((v) => v.state === 'ready') ? 'Adding room' : 'Waking the pool';
    this.ctx.sessions.tellQueued(`${what}: starting ${starting.length === 1 ? `instance ${starting[0]?.id ?? ''}` : `${starting.length} instances`} (${seconds} s so far)`);
  }

  private record(d: Decision, draining: readonly string[]): void {
    const what = d.direction === 'none' ? `no change at ${d.from}` : `scale ${d.direction} ${d.from} → ${d.to}`;
    this.ctx.events.record('autoscale.decision', `${what} (profile ${d.profile}): ${d.reason}${draining.length ? `; draining ${draining.join(', ')}` : ''}`, {
      data: {
        profile: d.profile, from: d.from, to: d.to, direction: d.direction, cause: d.cause,
        rule: d.rule?.rule ?? null, metric: d.rule?.metric ?? null, value: d.rule?.value ?? null, threshold: d.rule?.threshold ?? null,
        draining, metrics: d.metrics,
      },
    });
  }

  private snapshot(now: number): PoolSnapshot {
    let request: ResourceRequest = { cpu: 0, memoryBytes: 0, gpus: 0 };
    try {
      request = this.ctx.sessions.resolveProfile(undefined).request;
    } catch {
      // The default profile never fits the pool: count slots as plain sessions.
    }
    const instances: InstanceSnapshot[] = [];
    let sessions = 0;
    let cpu = 0;
    let memory = 0;
    let reporting = 0;
    for (const view of this.ctx.pool.list()) {
      const usage = this.ctx.sessions.usageOn(view.id);
      sessions += usage.sessions;
      if (view.load) {
        reporting++;
        cpu += view.load.cpu * 100;
        memory += view.load.memoryTotalBytes > 0 ? (view.load.memoryUsedBytes / view.load.memoryTotalBytes) * 100 : 0;
      }
      if (view.room) this.lastSlots = Math.max(1, freeSlots(view.room, emptyUsage(), request));
      if (!counts(view)) continue;
      instances.push({
        id: view.id, sessions: usage.sessions, createdMs: Date.parse(view.created), protected: view.protected,
        freeSlots: view.state === 'starting' ? -1 : view.state === 'ready' && view.room ? freeSlots(view.room, usage, request) : 0,
      });
    }
    // A starting instance will offer what an empty one does.
    const slots = this.lastSlots;
    const withStarting = instances.map((i) => (i.freeSlots < 0 ? { ...i, freeSlots: slots } : i));
    let intents = 0;
    for (const [user, until] of this.intents) {
      if (until <= now || this.ctx.sessions.active(user)) this.intents.delete(user);
      else intents++;
    }
    const active = Object.values(this.ctx.sessions.activeCount()).reduce((a, b) => a + b, 0);
    return {
      instances: withStarting, sessions, queued: this.ctx.sessions.queued(now).length, intents, activeUsers: active, slotsPerInstance: slots,
      cpuPercent: reporting ? cpu / reporting : 0, memoryPercent: reporting ? memory / reporting : 0,
    };
  }
}

/** Instances that count towards the pool's size: not draining and not on their way out. */
function counts(view: InstanceView): boolean {
  return !view.draining && view.state !== 'failed' && view.state !== 'stopping' && view.state !== 'deleted';
}
