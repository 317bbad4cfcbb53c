// Metric samples over time and Azure's evaluation of a trigger: a statistic over each grain, then an aggregation
// over the grains of the window.
import type { AutoscaleMetric, AutoscaleStatistic, Trigger } from './options.js';

/** One sample of every metric at an instant. */
export type MetricValues = Readonly<Record<AutoscaleMetric, number>>;

interface Sample {
  readonly atMs: number;
  readonly values: MetricValues;
}

/**
 * Combines numbers by a statistic; undefined for an empty list.
 *
 * @example
 * combine('avg', [1, 2, 6]); // 3
 * combine('max', [1, 2, 6]); // 6
 * combine('count', []); // undefined
 */
export function combine(statistic: AutoscaleStatistic, values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  switch (statistic) {
    case 'avg':
      return values.reduce((a, b) => a + b, 0) / values.length;
    case 'min':
      return Math.min(...values);
    case 'max':
      return Math.max(...values);
    case 'sum':
      return values.reduce((a, b) => a + b, 0);
    case 'count':
      return values.length;
  }
}

/**
 * The samples the rules look back on, kept for the longest window (plus one grain).
 *
 * @example
 * const history = new MetricHistory(300_000);
 * history.add(now, values);
 * history.evaluate(rule.trigger, now); // the aggregated value, or undefined without enough data
 */
export class MetricHistory {
  private readonly samples: Sample[] = [];

  /** @param keepMs how long samples are kept, in ms (the longest window plus a grain). */
  constructor(private readonly keepMs: number) {}

  add(atMs: number, values: MetricValues): void {
    this.samples.push({ atMs, values });
    const cutoff = atMs - this.keepMs;
    let drop = 0;
    while (drop < this.samples.length && (this.samples[drop]?.atMs ?? 0) < cutoff) drop++;
    if (drop > 0) this.samples.splice(0, drop);
  }

  /** The latest sample. */
  latest(): MetricValues | undefined {
    return this.samples[this.samples.length - 1]?.values;
  }

  /**
   * The trigger's metric over its window at `nowMs`: the statistic of each grain (grains aligned to multiples of
   * the grain), aggregated over the window's grains. Undefined until the history spans the window (less a
   * grain), so a rule never fires on a single early sample.
   */
  evaluate(trigger: Trigger, nowMs: number): number | undefined {
    const first = this.samples[0];
    if (!first || first.atMs > nowMs - trigger.windowMs + trigger.grainMs) return undefined;
    const from = nowMs - trigger.windowMs;
    const grains = new Map<number, number[]>();
    for (const s of this.samples) {
      if (s.atMs <= from || s.atMs > nowMs) continue;
      const key = Math.floor(s.atMs / trigger.grainMs);
      let list = grains.get(key);
      if (!list) grains.set(key, (list = []));
      list.push(s.values[trigger.metric]);
    }
    const perGrain: number[] = [];
    for (const list of grains.values()) {
      const v = combine(trigger.statistic, list);
      if (v !== undefined) perGrain.push(v);
    }
    return combine(trigger.aggregation, perGrain);
  }
}
