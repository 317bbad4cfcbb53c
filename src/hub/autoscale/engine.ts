// The autoscaler's decision, as pure code: a clock and a metrics source are injected, so the hub, the simulator
// and the tests run the very same rules. Each `tick` samples the pool, picks the active profile, evaluates its
// rules (any scale-out rule wins, the largest; scale-in only when every scale-in rule agrees, the smallest
// change), adds the session-aware part (queued requests, intents and warm free slots are covered at once;
// surplus instances drain once no longer needed) and refuses a scale-in that would scale straight out again.
import { MetricHistory, type MetricValues } from './history.js';
import type { Action, AutoscaleMetric, AutoscaleOperator, AutoscaleSettings, Profile, Rule, ScaleInPolicy } from './options.js';
import { activeProfile } from './schedule.js';

/** One instance that counts towards the pool's size (not draining, not being removed). */
export interface InstanceSnapshot {
  readonly id: string;
  /** Sessions placed on it. */
  readonly sessions: number;
  /** Sessions of the default profile it could still take (a starting instance: all of them). */
  readonly freeSlots: number;
  /** Epoch ms it was created. */
  readonly createdMs: number;
  /** Protected instances are never drained. */
  readonly protected: boolean;
}

/** What the autoscaler sees of the pool at one instant. */
export interface PoolSnapshot {
  readonly instances: readonly InstanceSnapshot[];
  /** Sessions on every instance, draining ones included. */
  readonly sessions: number;
  /** Requests waiting for room. */
  readonly queued: number;
  /** Users who showed intent (a login) and have no server yet. */
  readonly intents: number;
  /** Users with an active session. */
  readonly activeUsers: number;
  /** Sessions an empty instance takes (at least 1). */
  readonly slotsPerInstance: number;
  /** Average CPU use over the instances that report it, in percent. */
  readonly cpuPercent: number;
  /** Average memory use over the instances that report it, in percent. */
  readonly memoryPercent: number;
}

/** Where samples come from. */
export interface MetricsSource {
  snapshot(nowMs: number): PoolSnapshot;
}

/** Where time comes from (the wall clock in the hub, a virtual one in the simulator). */
export interface Clock {
  now(): number;
}

/** One rule's evaluation in a decision. */
export interface RuleEvaluation {
  readonly rule: string;
  readonly metric: AutoscaleMetric;
  readonly direction: 'out' | 'in';
  /** The aggregated metric; null without enough history yet. */
  readonly value: number | null;
  readonly operator: AutoscaleOperator;
  readonly threshold: number;
  readonly fired: boolean;
  /** Fired but still inside its cooldown. */
  readonly cooling: boolean;
}

/** The outcome of one tick. Every tick makes one, "no change" included. */
export interface Decision {
  readonly atMs: number;
  readonly profile: string;
  readonly from: number;
  readonly to: number;
  readonly direction: 'out' | 'in' | 'none';
  /**
   * - `rule`: a metric rule; `demand`: queued requests, intents or warm slots (or their surplus);
   * - `bounds`: the profile's min or max; `none`: no change.
   */
  readonly cause: 'rule' | 'demand' | 'bounds' | 'none';
  /** The deciding rule, with its metric value and threshold (cause `rule`). */
  readonly rule?: RuleEvaluation;
  /** Instances to drain for a scale-in, in `scaleInPolicy` order. */
  readonly drain: readonly string[];
  readonly reason: string;
  readonly metrics: MetricValues;
  readonly evaluations: readonly RuleEvaluation[];
}

const PER_INSTANCE = new Set<AutoscaleMetric>(['cpu', 'memory', 'sessionsPerInstance']);

function compare(value: number, op: AutoscaleOperator, threshold: number): boolean {
  switch (op) {
    case '>':
      return value > threshold;
    case '>=':
      return value >= threshold;
    case '<':
      return value < threshold;
    case '<=':
      return value <= threshold;
    case '==':
      return value === threshold;
    case '!=':
      return value !== threshold;
  }
}

/**
 * The size an action asks for from `current`.
 *
 * @example
 * actionTarget({ direction: 'out', type: 'PercentChangeCount', value: 50, cooldownMs: 0 }, 4); // 6
 */
export function actionTarget(action: Action, current: number): number {
  const sign = action.direction === 'out' ? 1 : -1;
  switch (action.type) {
    case 'ChangeCount':
      return Math.max(0, current + sign * Math.round(action.value));
    case 'PercentChangeCount':
      return Math.max(0, current + sign * Math.max(1, Math.ceil((current * action.value) / 100)));
    case 'ExactCount':
      return Math.round(action.value);
  }
}

/**
 * Instances in the order a scale-in drains them (protected ones left out).
 *
 * @example
 * scaleInOrder(instances, 'fewest-sessions')[0]?.id; // the instance with the fewest sessions (newest on a tie)
 */
export function scaleInOrder(instances: readonly InstanceSnapshot[], policy: ScaleInPolicy): InstanceSnapshot[] {
  const list = instances.filter((i) => !i.protected);
  const newestFirst = (a: InstanceSnapshot, b: InstanceSnapshot) => b.createdMs - a.createdMs || b.id.localeCompare(a.id);
  if (policy === 'newest') return list.sort(newestFirst);
  if (policy === 'oldest') return list.sort((a, b) => -newestFirst(a, b));
  return list.sort((a, b) => a.sessions - b.sessions || newestFirst(a, b));
}

/**
 * The metric values of a snapshot.
 *
 * @example
 * metricValues(snapshot).sessionsPerInstance; // 2.5 with 5 sessions on 2 kept instances; 0 with no instances
 */
export function metricValues(s: PoolSnapshot): MetricValues {
  const sessionsOnKept = s.instances.reduce((n, i) => n + i.sessions, 0);
  return {
    sessionsPerInstance: s.instances.length === 0 ? 0 : sessionsOnKept / s.instances.length,
    freeSlots: s.instances.reduce((n, i) => n + i.freeSlots, 0),
    queued: s.queued,
    activeUsers: s.activeUsers,
    cpu: s.cpuPercent,
    memory: s.memoryPercent,
  };
}

/**
 * The autoscaler. `tick()` samples the source at the clock's time and returns its decision; applying it (resize,
 * drain) is the caller's job, which is what keeps this pure.
 *
 * @example
 * const scaler = new Autoscaler(autoscaleSettings(config), source, { now: () => Date.now() });
 * const decision = scaler.tick();
 * if (decision.to !== decision.from) pool.resize(decision.to, decision.drain);
 */
export class Autoscaler {
  private readonly history: MetricHistory;
  /** Epoch ms of the last scaling action (cooldowns run from it); -Infinity before the first. */
  private lastActionMs = Number.NEGATIVE_INFINITY;
  /** Since when the pool has had more instances than demand needs; undefined while it has not. */
  private surplusSinceMs: number | undefined;

  constructor(
    readonly settings: AutoscaleSettings,
    private readonly source: MetricsSource,
    private readonly clock: Clock,
  ) {
    let keep = 0;
    for (const p of settings.profiles) for (const r of p.rules) keep = Math.max(keep, r.trigger.windowMs + r.trigger.grainMs);
    this.history = new MetricHistory(keep);
  }

  /** The profile active now. */
  profile(nowMs = this.clock.now()): Profile {
    return activeProfile(this.settings.profiles, nowMs);
  }

  /** Samples the pool and decides. A change counts as a scaling action for cooldowns. */
  tick(): Decision {
    const now = this.clock.now();
    const snap = this.source.snapshot(now);
    const values = metricValues(snap);
    this.history.add(now, values);
    const decision = this.decide(now, snap, values);
    if (decision.to !== decision.from) this.lastActionMs = now;
    return decision;
  }

  private decide(now: number, snap: PoolSnapshot, values: MetricValues): Decision {
    const p = this.profile(now);
    const current = snap.instances.length;
    const slots = Math.max(1, snap.slotsPerInstance);
    const working = snap.sessions + snap.queued + snap.intents > 0;
    // Warm slots are kept while anyone works; with nobody, the pool may go to its minimum (zero).
    const aware = this.settings.sessionAware;
    const need = aware ? snap.queued + snap.intents + (working ? p.warmSlots : 0) : 0;
    const evaluations = p.rules.map((rule) => this.evaluate(rule, now));
    const base = { atMs: now, profile: p.name, from: current, metrics: values, evaluations };
    const make = (to: number, cause: Decision['cause'], reason: string, extra: { rule?: RuleEvaluation; drain?: readonly string[] } = {}): Decision => ({
      ...base, to, direction: to > current ? 'out' : to < current ? 'in' : 'none', cause, reason, drain: extra.drain ?? [],
      ...(extra.rule ? { rule: extra.rule } : {}),
    });

    const order = scaleInOrder(snap.instances, this.settings.scaleInPolicy);
    if (current > p.max) {
      // Above the profile's max (a schedule changed): drain down to it, whatever the rules say.
      this.surplusSinceMs = undefined;
      return make(p.max, 'bounds', `profile "${p.name}" allows at most ${p.max} instance(s)`, { drain: order.slice(0, current - p.max).map((i) => i.id) });
    }
    // Scale out: bounds, then demand, then any rule (the largest wins).
    let out = current;
    let outCause: Decision['cause'] = 'none';
    let outReason = '';
    let outRule: RuleEvaluation | undefined;
    if (current < p.min) {
      out = p.min;
      outCause = 'bounds';
      outReason = `profile "${p.name}" keeps at least ${p.min} instance(s)`;
    }
    const shortfall = need - values.freeSlots;
    const demand = aware && shortfall > 0 ? current + Math.ceil(shortfall / slots) : current;
    if (demand > out) {
      out = demand;
      outCause = 'demand';
      outReason = `${snap.queued} queued, ${snap.intents} waking, ${working ? p.warmSlots : 0} warm slot(s) wanted; ${values.freeSlots} free`;
    }
    for (let i = 0; i < p.rules.length; i++) {
      const rule = p.rules[i] as Rule;
      const e = evaluations[i] as RuleEvaluation;
      if (rule.action.direction !== 'out' || !e.fired || e.cooling) continue;
      const target = actionTarget(rule.action, current);
      if (target > out) {
        out = target;
        outCause = 'rule';
        outRule = e;
        outReason = `rule ${e.rule}: ${e.metric} ${round(e.value)} ${e.operator} ${e.threshold}`;
      }
    }
    if (out > current) {
      this.surplusSinceMs = undefined;
      if (current >= p.max) return make(current, 'none', `would scale out (${outReason}) but profile "${p.name}" allows at most ${p.max}`);
      const to = Math.min(out, p.max);
      return make(to, outCause, `${outReason}${to < out ? ` (capped at max ${p.max})` : ''}`, outRule ? { rule: outRule } : {});
    }

    // Scale in: by the scale-in rules (all agree), or by surplus when there are none.
    const inRules = p.rules.map((r, i) => ({ r, e: evaluations[i] as RuleEvaluation })).filter((x) => x.r.action.direction === 'in');
    // Without scale-in rules only empty instances go (demand alone never unsettles a user); a rule may drain one
    // with sessions, which keep running there until they end.
    // While warm slots are wanted, a drain must leave more than them: left with exactly the slots wanted, the next
    // session to arrive would scale straight out again (an idle instance drained, then a new one started).
    const margin = this.warmMargin(p, working);
    const removable: InstanceSnapshot[] = [];
    let heldBack: { id: string; left: number } | undefined;
    let free = values.freeSlots;
    for (const inst of order) {
      if (aware && inRules.length === 0 && inst.sessions > 0) continue;
      if (free - inst.freeSlots < need + margin) {
        if (free - inst.freeSlots >= need) heldBack ??= { id: inst.id, left: free - inst.freeSlots };
        continue;
      }
      free -= inst.freeSlots;
      removable.push(inst);
    }
    const floor = Math.max(p.min, current - removable.length);
    let proposed = current;
    let cause: Decision['cause'] = 'none';
    let reason = heldBack && floor === current
      ? `keeping ${heldBack.id}: without it ${heldBack.left} free slot(s) would be left for ${need} wanted, and the next session would scale straight out again`
      : 'no rule fired and demand is met';
    let rule: RuleEvaluation | undefined;
    if (inRules.length > 0) {
      const waiting = inRules.find((x) => !x.e.fired || x.e.cooling);
      if (waiting) {
        reason = waiting.e.cooling
          ? `scale-in rule ${waiting.e.rule} is cooling down`
          : `scale-in rule ${waiting.e.rule} does not agree (${waiting.e.metric} ${round(waiting.e.value)} not ${waiting.e.operator} ${waiting.e.threshold})`;
      } else {
        // Every scale-in rule agrees: the smallest change wins.
        let best = Number.NEGATIVE_INFINITY;
        for (const x of inRules) {
          const t = actionTarget(x.r.action, current);
          if (t > best) {
            best = t;
            rule = x.e;
          }
        }
        proposed = Math.max(best, floor);
        cause = 'rule';
        reason = rule ? `rule ${rule.rule}: ${rule.metric} ${round(rule.value)} ${rule.operator} ${rule.threshold}` : reason;
        if (proposed === current) reason = `${reason}, but ${current - floor === 0 ? 'no instance can go without losing needed room' : `the minimum is ${floor}`}`;
      }
    } else if (aware && floor < current) {
      this.surplusSinceMs ??= now;
      const held = now - this.surplusSinceMs;
      if (held >= this.settings.scaleInDelayMs) {
        proposed = floor;
        cause = 'demand';
        reason = `${current - floor} instance(s) not needed: ${values.freeSlots} free slot(s), ${need} wanted`;
      } else {
        reason = `surplus of ${current - floor} instance(s) for ${Math.round(held / 1000)} s of ${Math.round(this.settings.scaleInDelayMs / 1000)} s`;
      }
    } else {
      this.surplusSinceMs = undefined;
    }
    if (proposed >= current) return make(current, 'none', reason, rule ? { rule } : {});
    // Flapping: take the smallest size that would not scale straight out again.
    for (let to = proposed; to < current; to++) {
      const drained = removable.slice(0, current - to);
      const flap = this.wouldScaleOut(p, snap, values, drained, to, need, now);
      if (flap === undefined) {
        return make(to, cause, `${reason}${to > proposed ? ` (stopped at ${to}: fewer would ${this.wouldScaleOut(p, snap, values, removable.slice(0, current - proposed), proposed, need, now)})` : ''}`, {
          drain: drained.map((i) => i.id), ...(rule ? { rule } : {}),
        });
      }
      if (to === current - 1) return make(current, 'none', `${reason}, but scaling in would ${flap} (flapping)`, rule ? { rule } : {});
    }
    return make(current, 'none', reason);
  }

  /** Free slots a scale-in must leave beyond those wanted: one while warm slots are kept (see `decide`), else none. */
  private warmMargin(p: Profile, working: boolean): number {
    return this.settings.sessionAware && working && p.warmSlots > 0 ? 1 : 0;
  }

  /** Why the pool would scale straight out again at size `to` (after draining `drained`), or undefined. */
  private wouldScaleOut(
    p: Profile, snap: PoolSnapshot, values: MetricValues, drained: readonly InstanceSnapshot[], to: number, need: number, now: number,
  ): string | undefined {
    const current = snap.instances.length;
    const lostFree = drained.reduce((n, i) => n + i.freeSlots, 0);
    const working = snap.sessions + snap.queued + snap.intents > 0;
    if (values.freeSlots - lostFree < need + this.warmMargin(p, working)) {
      return `leave ${values.freeSlots - lostFree} free slot(s) of ${need} wanted${values.freeSlots - lostFree >= need ? ', so the next session would scale out' : ''}`;
    }
    const project = (metric: AutoscaleMetric, v: number): number => {
      if (metric === 'freeSlots') return v - lostFree;
      if (metric === 'sessionsPerInstance') return to === 0 ? (v > 0 ? Number.POSITIVE_INFINITY : 0) : (v * current - drained.reduce((n, i) => n + i.sessions, 0)) / to;
      if (PER_INSTANCE.has(metric)) return to === 0 ? (v > 0 ? Number.POSITIVE_INFINITY : 0) : (v * current) / to;
      return v;
    };
    for (const rule of p.rules) {
      if (rule.action.direction !== 'out') continue;
      const value = this.history.evaluate(rule.trigger, now);
      if (value === undefined) continue;
      const projected = project(rule.trigger.metric, value);
      if (compare(projected, rule.trigger.operator, rule.trigger.threshold)) {
        return `fire rule ${rule.name} (${rule.trigger.metric} ${round(projected)} ${rule.trigger.operator} ${rule.trigger.threshold})`;
      }
    }
    return undefined;
  }

  private evaluate(rule: Rule, now: number): RuleEvaluation {
    const value = this.history.evaluate(rule.trigger, now);
    const fired = value !== undefined && compare(value, rule.trigger.operator, rule.trigger.threshold);
    return {
      rule: rule.name, metric: rule.trigger.metric, direction: rule.action.direction, value: value ?? null, operator: rule.trigger.operator,
      threshold: rule.trigger.threshold, fired, cooling: fired && now - this.lastActionMs < rule.action.cooldownMs,
    };
  }
}

function round(v: number | null): string {
  if (v === null) return 'n/a';
  if (!Number.isFinite(v)) return String(v);
  return String(Math.round(v * 100) / 100);
}
