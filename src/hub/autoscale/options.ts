// The autoscaler's settings, filled from pool.yaml in one place (`autoscaleSettings`): the config already holds
// every default; this reshapes it into millisecond fields and the rule and profile types the engine uses.
import type { LoadedConfig } from '../../config/index.js';
import {
  fixedSpan, type AutoscaleMetric, type AutoscaleOperator, type AutoscaleStatistic,
} from '../../config/autoscale-schema.js';

export type { AutoscaleMetric, AutoscaleOperator, AutoscaleStatistic };

/** Which instance a scale-in drains first. */
export type ScaleInPolicy = 'fewest-sessions' | 'newest' | 'oldest';

/** When a rule fires. */
export interface Trigger {
  readonly metric: AutoscaleMetric;
  /** How samples in one grain combine. */
  readonly statistic: AutoscaleStatistic;
  /** Length of one grain, in ms. */
  readonly grainMs: number;
  /** How far back the rule looks, in ms (at least one grain). */
  readonly windowMs: number;
  /** How the grains of the window combine. */
  readonly aggregation: AutoscaleStatistic;
  readonly operator: AutoscaleOperator;
  /** CPU and memory in percent; the rest in sessions, slots, requests or users. */
  readonly threshold: number;
}

/** What a rule does. */
export interface Action {
  readonly direction: 'out' | 'in';
  readonly type: 'ChangeCount' | 'PercentChangeCount' | 'ExactCount';
  readonly value: number;
  /** After any scaling action, the rule may not fire for this long, in ms. */
  readonly cooldownMs: number;
}

/** A metric rule; `name` is how events and metrics refer to it (`<profile>#<index>`). */
export interface Rule {
  readonly name: string;
  readonly trigger: Trigger;
  readonly action: Action;
}

/** One profile: the pool's bounds, warm slots and rules while it is active. */
export interface Profile {
  readonly name: string;
  readonly kind: 'default' | 'recurrence' | 'fixed';
  readonly min: number;
  readonly max: number;
  readonly warmSlots: number;
  readonly rules: readonly Rule[];
  /** Weekly schedule (recurrence profiles): days 0 = Sunday, start/end as minutes after local midnight. */
  readonly recurrence?: { readonly days: readonly number[]; readonly startMin: number; readonly endMin?: number; readonly timeZone: string };
  /** Epoch ms span (fixed-date profiles). */
  readonly fixed?: { readonly startMs: number; readonly endMs: number };
}

/** Everything the engine needs; build it with `autoscaleSettings`. */
export interface AutoscaleSettings {
  /** When false the autoscaler never changes the pool's size (it still reports "no change" decisions). */
  readonly enabled: boolean;
  /** How often to sample and decide, in ms. */
  readonly intervalMs: number;
  readonly scaleInPolicy: ScaleInPolicy;
  /** How long a login keeps room for a user with no server, in ms. */
  readonly wakeHoldMs: number;
  /** How long a surplus must last before a demand-driven scale-in, in ms. */
  readonly scaleInDelayMs: number;
  /** The default profile first, then the scheduled ones in file order. */
  readonly profiles: readonly Profile[];
  /**
   * Queued requests, intents and warm slots drive the size, and demand alone drains only empty instances. Always
   * true in the hub; the simulator turns it off for its plain "cpu-rule" baseline.
   */
  readonly sessionAware: boolean;
}

/** Minutes after midnight of "HH:MM". */
const minutes = (clock: string): number => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));

/**
 * The autoscaler's settings from pool.yaml: the one place its options are resolved.
 *
 * @example
 * const settings = autoscaleSettings(loadConfig('pool.yaml'));
 * settings.profiles[0]?.name; // 'default'
 */
export function autoscaleSettings(config: Pick<LoadedConfig, 'pool'>): AutoscaleSettings {
  const { pool } = config;
  const a = pool.autoscale;
  const rules = (profile: string, list: typeof a.rules): Rule[] =>
    list.map((r, i) => ({
      name: `${profile}#${i}`,
      trigger: {
        metric: r.trigger.metric, statistic: r.trigger.statistic, grainMs: r.trigger.grain, windowMs: r.trigger.window,
        aggregation: r.trigger.aggregation, operator: r.trigger.operator, threshold: r.trigger.threshold,
      },
      action: { direction: r.action.direction, type: r.action.type, value: r.action.value, cooldownMs: r.action.cooldown },
    }));
  const profiles: Profile[] = [{ name: 'default', kind: 'default', min: pool.min, max: pool.max, warmSlots: a.warmSlots, rules: rules('default', a.rules) }];
  for (const p of a.profiles) {
    const base = {
      name: p.name, min: p.min ?? pool.min, max: p.max ?? pool.max, warmSlots: p.warmSlots ?? a.warmSlots,
      rules: rules(p.name, p.rules ?? a.rules),
    };
    if (p.fixedDate) {
      const [startMs, endMs] = fixedSpan(p.fixedDate);
      profiles.push({ ...base, kind: 'fixed', fixed: { startMs, endMs } });
    } else if (p.recurrence) {
      const r = p.recurrence;
      profiles.push({
        ...base, kind: 'recurrence',
        recurrence: { days: r.days, startMin: minutes(r.start), ...(r.end === undefined ? {} : { endMin: minutes(r.end) }), timeZone: r.timeZone },
      });
    }
  }
  return {
    enabled: a.enabled, intervalMs: a.interval, scaleInPolicy: a.scaleInPolicy, wakeHoldMs: a.wakeHold, scaleInDelayMs: a.scaleInDelay, profiles,
    sessionAware: true,
  };
}
