// Replays a trace of session arrivals through the same autoscaler engine and placement code the hub runs, on a
// virtual clock (no processes): instances take `instanceStartMs` to join, a placed session's kernel answers
// after `kernelStartMs`, scale-in drains (an instance goes once its sessions end). Deterministic for a seed.
import { decidePlacement, emptyUsage, type PlacementStrategy, type ResourceRequest, type Room, type Usage } from '../sessions/placement.js';
import { Autoscaler, type Decision, type InstanceSnapshot, type PoolSnapshot } from './engine.js';
import type { AutoscaleSettings, Profile, Rule } from './options.js';
import { freeSlots } from './slots.js';
import type { Trace, TraceSession } from './trace.js';

/** Policies the simulator compares. */
export const SIMULATION_POLICIES = ['static', 'cpu-rule', 'configured'] as const;
export type SimulationPolicy = (typeof SIMULATION_POLICIES)[number];

/** What a simulation runs on. */
export interface SimulationSetup {
  readonly trace: Trace;
  /** The configured autoscaler (pool.yaml). */
  readonly settings: AutoscaleSettings;
  /** What each instance offers. */
  readonly room: Room;
  /** Requests by profile name, and the default (a session naming no profile). */
  readonly profiles: Readonly<Record<string, ResourceRequest>>;
  readonly defaultRequest: ResourceRequest;
  readonly strategy: PlacementStrategy;
  /** Instances at the start (pool.instances). */
  readonly startSize: number;
  /** pool.max. */
  readonly maxInstances: number;
  /** How long an instance takes from creation to taking sessions, in ms (±20 % by the seed). */
  readonly instanceStartMs: number;
  /** How long a placed session takes to its first kernel result, in ms (±20 % by the seed). */
  readonly kernelStartMs: number;
  /** How long after the last session ends the run goes on (the pool settles), in ms. */
  readonly settleMs: number;
  readonly seed: number;
}

/** What one policy cost and how users fared. */
export interface SimulationResult {
  readonly policy: SimulationPolicy;
  readonly sessions: number;
  readonly instanceHours: number;
  /** Instance-hours if capacity followed demand exactly (with the instance start time). */
  readonly oracleInstanceHours: number;
  /** instanceHours / oracleInstanceHours. */
  readonly ratio: number;
  /** Wait from request to first kernel result, in ms. */
  readonly waitP50Ms: number;
  readonly waitP95Ms: number;
  readonly waitMaxMs: number;
  /** Sessions stopped by the pool (a scale-in must never do it). */
  readonly killed: number;
  /** Sessions still waiting when the run ended. */
  readonly unplaced: number;
  /** Decisions that changed the size. */
  readonly scalingEvents: number;
  readonly peakInstances: number;
  /** The five longest waits, longest first (who, when asked, how long). */
  readonly slowest: ReadonlyArray<{ readonly user: string; readonly at: string; readonly waitMs: number }>;
}

interface SimInstance {
  readonly id: string;
  readonly createdMs: number;
  readonly readyMs: number;
  draining: boolean;
  readonly usage: Usage;
  /** Cores the sessions on it use. */
  cpuUsed: number;
}

interface Running {
  readonly session: TraceSession;
  readonly instance: SimInstance;
  readonly request: ResourceRequest;
  readonly gpus: readonly number[];
  readonly endMs: number;
}

/**
 * A small seeded PRNG (mulberry32): the same seed gives the same run.
 *
 * @example
 * const random = seededRandom(42);
 * random(); // 0.6011037519201636, the same on every run with seed 42
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The classic CPU rule (Azure's template): out by 1 above 70 % over 5 min, in by 1 below 25 % over 10 min.
 *
 * @example
 * const settings = cpuRuleSettings(setup.settings, 10);
 * settings.profiles[0]?.rules.map((r) => r.name); // ['cpu#0', 'cpu#1'] (min 1, max 10, not session-aware)
 */
export function cpuRuleSettings(base: AutoscaleSettings, max: number): AutoscaleSettings {
  const rule = (name: string, direction: 'out' | 'in', operator: '>' | '<', threshold: number, windowMs: number): Rule => ({
    name, trigger: { metric: 'cpu', statistic: 'avg', grainMs: 60_000, windowMs, aggregation: 'avg', operator, threshold },
    action: { direction, type: 'ChangeCount', value: 1, cooldownMs: 300_000 },
  });
  const profile: Profile = {
    name: 'default', kind: 'default', min: 1, max, warmSlots: 0,
    rules: [rule('cpu#0', 'out', '>', 70, 300_000), rule('cpu#1', 'in', '<', 25, 600_000)],
  };
  return { ...base, enabled: true, sessionAware: false, profiles: [profile] };
}

const requestOf = (setup: SimulationSetup, s: TraceSession): ResourceRequest =>
  (s.profile === null ? setup.defaultRequest : setup.profiles[s.profile]) ?? setup.defaultRequest;

/**
 * Instance-hours if capacity followed demand exactly: each moment as many instances as the sessions then
 * running need (no waits, sessions perfectly packed), plus the start time of every instance added.
 *
 * @example
 * oracleInstanceHours(setup); // 41.7
 */
export function oracleInstanceHours(setup: SimulationSetup): number {
  const points: Array<[number, number]> = [];
  for (const s of setup.trace.sessions) {
    const share = 1 / Math.max(1, freeSlots(setup.room, emptyUsage(), requestOf(setup, s)));
    points.push([s.atMs, share], [s.atMs + setup.kernelStartMs + s.durationMs, -share]);
  }
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let load = 0;
  let instances = 0;
  let last = points[0]?.[0] ?? 0;
  let ms = 0;
  for (const [at, delta] of points) {
    ms += instances * (at - last);
    last = at;
    load += delta;
    const next = Math.ceil(Math.max(0, load) - 1e-9);
    if (next > instances) ms += (next - instances) * setup.instanceStartMs;
    instances = next;
  }
  return ms / 3_600_000;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

/**
 * Runs one policy over the trace.
 *
 * @example
 * const result = simulate(setup, 'configured');
 * result.ratio; // 1.08
 */
export function simulate(setup: SimulationSetup, policy: SimulationPolicy): SimulationResult {
  const random = seededRandom(setup.seed);
  const jitter = (ms: number) => Math.round(ms * (0.8 + 0.4 * random()));
  const sessions = setup.trace.sessions;
  const startMs = setup.trace.startMs;
  const lastEnd = sessions.reduce((m, s) => Math.max(m, s.atMs + setup.kernelStartMs + s.durationMs), startMs);
  const endMs = lastEnd + setup.settleMs;
  const slots = Math.max(1, freeSlots(setup.room, emptyUsage(), setup.defaultRequest));

  const instances = new Map<string, SimInstance>();
  let killed = 0;
  let made = 0;
  let instanceMs = 0;
  let peak = 0;
  let now = startMs;
  const create = () => {
    const id = `i-${String(++made).padStart(4, '0')}`;
    instances.set(id, { id, createdMs: now, readyMs: now + jitter(setup.instanceStartMs), draining: false, usage: emptyUsage(), cpuUsed: 0 });
    peak = Math.max(peak, instances.size);
  };
  const remove = (inst: SimInstance, cutOff = false) => {
    // Only a drained, empty instance is removed while the run goes on; anything else would kill its sessions.
    if (!cutOff) killed += inst.usage.sessions;
    instanceMs += now - inst.createdMs;
    instances.delete(inst.id);
  };

  let settings: AutoscaleSettings | undefined;
  if (policy === 'configured') settings = { ...setup.settings, enabled: true };
  if (policy === 'cpu-rule') settings = cpuRuleSettings(setup.settings, setup.maxInstances);
  if (policy === 'static') {
    // What a team provisions without autoscaling: enough for the peak, all the time.
    const peakNeed = Math.ceil(oraclePeak(setup));
    for (let i = 0; i < Math.max(peakNeed, 1); i++) create();
  } else {
    const first = settings?.profiles[0];
    for (let i = 0; i < Math.min(Math.max(setup.startSize, first?.min ?? 0), first?.max ?? setup.startSize); i++) create();
  }

  const queue: Array<{ session: TraceSession; request: ResourceRequest }> = [];
  const running: Running[] = [];
  const waits: number[] = [];
  const slow: Array<{ user: string; at: string; waitMs: number }> = [];
  let scalingEvents = 0;

  const snapshot = (at: number): PoolSnapshot => {
    const kept: InstanceSnapshot[] = [];
    let sessionCount = 0;
    let cpu = 0;
    let ready = 0;
    for (const inst of instances.values()) {
      sessionCount += inst.usage.sessions;
      if (inst.readyMs <= at) {
        ready++;
        cpu += setup.room.cpus > 0 ? (inst.cpuUsed / setup.room.cpus) * 100 : 0;
      }
      if (inst.draining) continue;
      kept.push({
        id: inst.id, sessions: inst.usage.sessions, createdMs: inst.createdMs, protected: false,
        freeSlots: inst.readyMs > at ? slots : freeSlots(setup.room, inst.usage, setup.defaultRequest),
      });
    }
    return {
      instances: kept, sessions: sessionCount, queued: queue.length, intents: 0, activeUsers: running.length + queue.length,
      slotsPerInstance: slots, cpuPercent: ready ? cpu / ready : 0, memoryPercent: 0,
    };
  };
  const scaler = settings ? new Autoscaler(settings, { snapshot }, { now: () => now }) : undefined;
  const apply = (d: Decision) => {
    if (d.to === d.from) return;
    scalingEvents++;
    if (d.to > d.from) for (let i = d.from; i < d.to; i++) create();
    else {
      for (const id of d.drain.slice(0, d.from - d.to)) {
        const inst = instances.get(id);
        if (!inst) continue;
        inst.draining = true;
        if (inst.usage.sessions === 0) remove(inst);
      }
    }
  };
  const pump = () => {
    for (let i = 0; i < queue.length; ) {
      const item = queue[i];
      if (!item) break;
      const candidates = [...instances.values()]
        .filter((inst) => inst.readyMs <= now && !inst.draining)
        .map((inst) => ({ id: inst.id, room: setup.room, usage: inst.usage }));
      const decision = decidePlacement(candidates, item.request, { strategy: setup.strategy });
      if (decision.outcome !== 'placed') {
        i++;
        continue;
      }
      queue.splice(i, 1);
      const inst = instances.get(decision.instanceId) as SimInstance;
      inst.usage.cpu += item.request.cpu;
      inst.usage.memoryBytes += item.request.memoryBytes;
      for (const g of decision.gpus) inst.usage.gpus.add(g);
      inst.usage.sessions++;
      inst.cpuUsed += item.session.cpu;
      const kernelAt = now + jitter(setup.kernelStartMs);
      waits.push(kernelAt - item.session.atMs);
      slow.push({ user: item.session.user, at: new Date(item.session.atMs).toISOString(), waitMs: kernelAt - item.session.atMs });
      running.push({ session: item.session, instance: inst, request: item.request, gpus: decision.gpus, endMs: kernelAt + item.session.durationMs });
    }
  };

  let next = 0;
  let nextTick = startMs;
  const interval = settings?.intervalMs ?? 60_000;
  for (let guard = 0; guard < 5_000_000; guard++) {
    const nextArrival = sessions[next]?.atMs ?? Number.POSITIVE_INFINITY;
    let nextEnd = Number.POSITIVE_INFINITY;
    for (const r of running) nextEnd = Math.min(nextEnd, r.endMs);
    let nextReady = Number.POSITIVE_INFINITY;
    for (const inst of instances.values()) if (inst.readyMs > now) nextReady = Math.min(nextReady, inst.readyMs);
    const t = Math.min(nextArrival, nextEnd, nextReady, scaler ? nextTick : Number.POSITIVE_INFINITY);
    if (t > endMs) break;
    now = t;
    for (let i = running.length - 1; i >= 0; i--) {
      const r = running[i] as Running;
      if (r.endMs > now) continue;
      running.splice(i, 1);
      const u = r.instance.usage;
      u.cpu -= r.request.cpu;
      u.memoryBytes -= r.request.memoryBytes;
      for (const g of r.gpus) u.gpus.delete(g);
      u.sessions--;
      r.instance.cpuUsed -= r.session.cpu;
      if (r.instance.draining && u.sessions === 0 && instances.has(r.instance.id)) remove(r.instance);
    }
    let arrived = false;
    while ((sessions[next]?.atMs ?? Number.POSITIVE_INFINITY) <= now) {
      const session = sessions[next++] as TraceSession;
      queue.push({ session, request: requestOf(setup, session) });
      arrived = true;
    }
    pump();
    // The hub decides at once when a request has to wait, and on every interval.
    if (scaler && ((arrived && queue.length > 0) || now >= nextTick)) {
      apply(scaler.tick());
      pump();
      if (now >= nextTick) nextTick += interval;
    }
  }
  now = endMs;
  for (const inst of [...instances.values()]) {
    // A run that ends with sessions still on an instance is cut off, not killed: count its time to the end.
    remove(inst, true);
  }
  for (const q of queue) {
    waits.push(endMs - q.session.atMs);
    slow.push({ user: q.session.user, at: new Date(q.session.atMs).toISOString(), waitMs: endMs - q.session.atMs });
  }
  slow.sort((a, b) => b.waitMs - a.waitMs || a.at.localeCompare(b.at));
  waits.sort((a, b) => a - b);
  const instanceHours = instanceMs / 3_600_000;
  const oracle = oracleInstanceHours(setup);
  return {
    policy, sessions: sessions.length, instanceHours, oracleInstanceHours: oracle, ratio: oracle > 0 ? instanceHours / oracle : 0,
    waitP50Ms: percentile(waits, 50), waitP95Ms: percentile(waits, 95), waitMaxMs: waits[waits.length - 1] ?? 0,
    killed, unplaced: queue.length, scalingEvents, peakInstances: peak, slowest: slow.slice(0, 5),
  };
}

/** Most instances demand needs at once (the oracle's peak). */
function oraclePeak(setup: SimulationSetup): number {
  const points: Array<[number, number]> = [];
  for (const s of setup.trace.sessions) {
    const share = 1 / Math.max(1, freeSlots(setup.room, emptyUsage(), requestOf(setup, s)));
    points.push([s.atMs, share], [s.atMs + setup.kernelStartMs + s.durationMs, -share]);
  }
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let load = 0;
  let peak = 0;
  for (const [, d] of points) {
    load += d;
    peak = Math.max(peak, Math.ceil(load - 1e-9));
  }
  return peak;
}
