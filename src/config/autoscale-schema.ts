// `pool.autoscale` in pool.yaml: Azure autoscale's model (a default profile, recurring and fixed-date profiles,
// metric rules with cooldowns) plus what a session pool needs on top (warm slots, scale-in policy, wake on
// intent). Every default lives here; a bad rule or schedule is refused naming its key.
import { z } from 'zod';
import { duration } from './duration.js';

/** The metrics a rule can watch. Per-instance metrics are averaged over the pool's instances; the rest are pool totals. */
export const AUTOSCALE_METRICS = ['sessionsPerInstance', 'freeSlots', 'queued', 'activeUsers', 'cpu', 'memory'] as const;
export type AutoscaleMetric = (typeof AUTOSCALE_METRICS)[number];
/** Statistics over a grain (Azure's `statistic`) and over the window (Azure's `timeAggregation`). */
export const AUTOSCALE_STATISTICS = ['avg', 'min', 'max', 'sum', 'count'] as const;
export type AutoscaleStatistic = (typeof AUTOSCALE_STATISTICS)[number];
export const AUTOSCALE_OPERATORS = ['>', '>=', '<', '<=', '==', '!='] as const;
export type AutoscaleOperator = (typeof AUTOSCALE_OPERATORS)[number];
/** Azure's spellings, accepted so operators can bring their rules. */
const AZURE_OPERATORS: Record<string, AutoscaleOperator> = {
  GreaterThan: '>', GreaterThanOrEqual: '>=', LessThan: '<', LessThanOrEqual: '<=', Equals: '==', NotEquals: '!=',
};
const AZURE_STATISTICS: Record<string, AutoscaleStatistic> = { Average: 'avg', Min: 'min', Max: 'max', Sum: 'sum', Count: 'count', Total: 'sum', Minimum: 'min', Maximum: 'max' };

const metric = z.enum(AUTOSCALE_METRICS, { error: (issue) => `unknown metric ${JSON.stringify(issue.input)}; known: ${AUTOSCALE_METRICS.join(', ')}` });
const statistic = (fallback: AutoscaleStatistic) =>
  z
    .string()
    .default(fallback)
    .transform((value, ctx) => {
      const s = (AUTOSCALE_STATISTICS as readonly string[]).includes(value) ? (value as AutoscaleStatistic) : AZURE_STATISTICS[value];
      if (s === undefined) {
        ctx.addIssue({ code: 'custom', message: `unknown statistic "${value}"; known: ${AUTOSCALE_STATISTICS.join(', ')}` });
        return z.NEVER;
      }
      return s;
    });
const operator = z.string().transform((value, ctx) => {
  const op = (AUTOSCALE_OPERATORS as readonly string[]).includes(value) ? (value as AutoscaleOperator) : AZURE_OPERATORS[value];
  if (op === undefined) {
    ctx.addIssue({ code: 'custom', message: `unknown operator "${value}"; write one of ${AUTOSCALE_OPERATORS.join(' ')} (or Azure's GreaterThan, …)` });
    return z.NEVER;
  }
  return op;
});
const count = () => z.number().int('must be a whole number').min(0, 'must not be negative').max(1000, 'must be at most 1000');

export const triggerSchema = z
  .strictObject({
    metric,
    statistic: statistic('avg').describe('How the samples inside one grain are combined (Azure: statistic).'),
    grain: duration('1m').describe('Length of one grain (Azure: timeGrain).'),
    window: duration('5m').describe('How far back the rule looks; at least one grain (Azure: timeWindow).'),
    aggregation: statistic('avg').describe('How the grains of the window are combined (Azure: timeAggregation).'),
    operator: operator.describe('Comparison with the threshold: > >= < <= == != (or Azure\'s names).'),
    threshold: z.number().describe('Value compared with the aggregated metric (CPU and memory in percent).'),
  })
  .superRefine((t, ctx) => {
    if (t.grain <= 0) ctx.addIssue({ code: 'custom', path: ['grain'], message: 'must be longer than 0' });
    else if (t.window < t.grain) ctx.addIssue({ code: 'custom', path: ['window'], message: `is shorter than its grain (${t.window} ms < ${t.grain} ms)` });
  })
  .describe('When a rule fires: statistic over each grain, aggregated over the window, compared with the threshold.');

export const actionSchema = z
  .strictObject({
    direction: z
      .enum(['out', 'in', 'Increase', 'Decrease'])
      .transform((d) => (d === 'Increase' ? 'out' : d === 'Decrease' ? 'in' : d))
      .describe('`out` adds instances, `in` removes them (by draining).'),
    type: z
      .enum(['ChangeCount', 'PercentChangeCount', 'ExactCount'])
      .default('ChangeCount')
      .describe('`ChangeCount`: by `value` instances; `PercentChangeCount`: by `value` % of the pool (at least 1); `ExactCount`: to `value`.'),
    value: z.number().min(0, 'must not be negative').max(1000, 'must be at most 1000').default(1).describe('Instances, percent, or the exact size.'),
    cooldown: duration('5m').describe('How long after any scaling action this rule may not fire again.'),
  })
  .describe('What a rule does when it fires.');

export const ruleSchema = z.strictObject({ trigger: triggerSchema, action: actionSchema });

const DAY_NAMES = ['sunday', 'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday'] as const;
/** Day names and shortcuts accepted in `recurrence.days` (0 = Sunday). */
function parseDays(value: string | readonly string[]): number[] | string {
  const words = typeof value === 'string' ? value.split(/[\s,]+/).filter(Boolean) : value;
  const days = new Set<number>();
  for (const raw of words) {
    const word = raw.toLowerCase();
    if (word === 'weekdays') [1, 2, 3, 4, 5].forEach((d) => days.add(d));
    else if (word === 'weekends') [0, 6].forEach((d) => days.add(d));
    else if (word === 'daily' || word === 'everyday') [0, 1, 2, 3, 4, 5, 6].forEach((d) => days.add(d));
    else {
      const index = DAY_NAMES.findIndex((d) => d === word || (word.length >= 3 && d.startsWith(word)));
      if (index < 0) return `"${raw}" is not a day; write e.g. monday, mon, weekdays, weekends or daily`;
      days.add(index);
    }
  }
  return days.size === 0 ? 'names no day' : [...days].sort();
}

const timeZone = z.string().refine((tz) => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}, { error: (issue) => `${JSON.stringify(issue.input)} is not an IANA time zone (e.g. Europe/Stockholm, UTC)` });
const clock = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'write a time of day as HH:MM (24 h)');

export const recurrenceSchema = z
  .strictObject({
    days: z
      .union([z.string(), z.array(z.string())])
      .transform((value, ctx) => {
        const days = parseDays(value);
        if (typeof days === 'string') {
          ctx.addIssue({ code: 'custom', message: days });
          return z.NEVER;
        }
        return days;
      })
      .describe('Days it starts on: names (monday, mon), weekdays, weekends or daily.'),
    start: clock.describe('Local time it starts (HH:MM).'),
    end: clock.optional().describe('Local time it ends the same day; without: it lasts until the next recurring profile starts (as in Azure).'),
    timeZone: timeZone.default('UTC').describe('IANA time zone of `start` and `end`.'),
  })
  .describe('A weekly schedule.');

const localDateTime = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?$/, 'write a local date and time as YYYY-MM-DDTHH:MM');
export const fixedDateSchema = z
  .strictObject({
    start: localDateTime.describe('Local start (YYYY-MM-DDTHH:MM).'),
    end: localDateTime.describe('Local end (YYYY-MM-DDTHH:MM), after start.'),
    timeZone: timeZone.default('UTC').describe('IANA time zone of `start` and `end`.'),
  })
  .describe('A one-off period (an exam, a course day).');

const PROFILE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
export const scheduleProfileSchema = z
  .strictObject({
    name: z.string().regex(PROFILE_NAME, 'profile names are lowercase [a-z][a-z0-9_-]{0,31}'),
    min: count().optional().describe('Fewest instances while active (default: pool.min).'),
    max: count().optional().describe('Most instances while active (default: pool.max).'),
    warmSlots: count().optional().describe('Free session slots kept ready while active (default: autoscale.warmSlots).'),
    rules: z.array(ruleSchema).optional().describe('Rules while active (default: autoscale.rules).'),
    recurrence: recurrenceSchema.optional(),
    fixedDate: fixedDateSchema.optional(),
  })
  .superRefine((p, ctx) => {
    if ((p.recurrence === undefined) === (p.fixedDate === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'give exactly one of `recurrence` or `fixedDate`' });
    }
    if (p.min !== undefined && p.max !== undefined && p.min > p.max) ctx.addIssue({ code: 'custom', path: ['min'], message: `is more than max (${p.min} > ${p.max})` });
  });

export const autoscaleSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Let the autoscaler size the pool between pool.min and pool.max (pool.instances is then only the start size).'),
    interval: duration('5s').describe('How often metrics are sampled and the rules evaluated (queued requests and logins are acted on at once).'),
    warmSlots: count().default(0).describe('Free session slots kept ready beyond the sessions there are (the default profile\'s).'),
    scaleInPolicy: z
      .enum(['fewest-sessions', 'newest', 'oldest'])
      .default('fewest-sessions')
      .describe('Which instance a scale-in drains first (never a protected one; sessions always end on their own).'),
    scaleInDelay: duration('1m').describe('How long more free slots than needed must last before the pool drains an instance (rules have their own cooldowns).'),
    wakeHold: duration('5m').describe('How long an intent (a login) keeps room for that user when they have no server yet.'),
    rules: z.array(ruleSchema).default([]).describe('The default profile\'s rules (Azure: rules of the default profile).'),
    profiles: z.array(scheduleProfileSchema).default([]).describe('Recurring and fixed-date profiles: fixed date > recurrence > default.'),
  })
  .superRefine((a, ctx) => {
    const names = new Set<string>();
    a.profiles.forEach((p, i) => {
      if (names.has(p.name)) ctx.addIssue({ code: 'custom', path: ['profiles', i, 'name'], message: `profile "${p.name}" is defined twice` });
      names.add(p.name);
    });
    const fixed = a.profiles
      .map((p, i) => ({ p, i, span: p.fixedDate ? fixedSpan(p.fixedDate) : undefined }))
      .filter((f): f is { p: typeof f.p; i: number; span: [number, number] } => f.span !== undefined);
    for (const f of fixed) {
      if (f.span[1] <= f.span[0]) ctx.addIssue({ code: 'custom', path: ['profiles', f.i, 'fixedDate', 'end'], message: 'is not after start' });
    }
    for (let x = 0; x < fixed.length; x++) {
      for (let y = x + 1; y < fixed.length; y++) {
        const a1 = fixed[x];
        const b1 = fixed[y];
        if (a1 && b1 && a1.span[0] < b1.span[1] && b1.span[0] < a1.span[1]) {
          ctx.addIssue({ code: 'custom', path: ['profiles', b1.i, 'fixedDate'], message: `overlaps fixed-date profile "${a1.p.name}" (profiles.${a1.i})` });
        }
      }
    }
  })
  .prefault({})
  .describe('Sizing the pool by schedule, rules and demand (Azure autoscale\'s model), down to zero.');

/**
 * Epoch ms of a fixed date's start and end.
 *
 * @example
 * fixedSpan({ start: '2026-12-24 00:00', end: '2026-12-26 23:59', timeZone: 'Europe/Berlin' });
 * // [Date.parse('2026-12-23T23:00:00Z'), Date.parse('2026-12-26T22:59:00Z')]
 */
export function fixedSpan(fixed: { start: string; end: string; timeZone: string }): [number, number] {
  return [zonedTimeToEpoch(fixed.start, fixed.timeZone), zonedTimeToEpoch(fixed.end, fixed.timeZone)];
}

/**
 * The instant a local date and time ("2026-03-29T02:30") has in an IANA time zone; a time skipped by a DST change
 * moves forward by the gap, as clocks do.
 *
 * @example
 * zonedTimeToEpoch('2026-01-05T08:00', 'Europe/Stockholm'); // Date.parse('2026-01-05T07:00:00Z')
 */
export function zonedTimeToEpoch(local: string, timeZone: string): number {
  const m = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2}))?$/.exec(local);
  if (!m) return Number.NaN;
  const [y, mo, d, h, mi, s] = m.slice(1).map((v) => Number(v ?? 0)) as [number, number, number, number, number, number];
  return localToEpoch(y, mo, d, h, mi, s, timeZone);
}

/**
 * The instant of a local wall time in `timeZone` (month 1-based).
 *
 * @example
 * new Date(localToEpoch(2026, 7, 1, 9, 0, 0, 'Europe/Berlin')).toISOString(); // '2026-07-01T07:00:00.000Z'
 */
export function localToEpoch(y: number, mo: number, d: number, h: number, mi: number, s: number, timeZone: string): number {
  const wall = Date.UTC(y, mo - 1, d, h, mi, s);
  // Two passes: the offset at the guess, then at the corrected instant (they differ only around a DST change).
  let guess = wall - offsetAt(wall, timeZone);
  guess = wall - offsetAt(guess, timeZone);
  return guess;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
/**
 * The wall clock in `timeZone` at `epochMs`.
 *
 * @example
 * wallClock(Date.parse('2026-07-01T07:00:00Z'), 'Europe/Berlin');
 * // { y: 2026, mo: 7, d: 1, h: 9, mi: 0, s: 0, weekday: 3 } (weekday 0 is Sunday)
 */
export function wallClock(epochMs: number, timeZone: string): { y: number; mo: number; d: number; h: number; mi: number; s: number; weekday: number } {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  const parts: Record<string, number> = {};
  for (const p of f.formatToParts(epochMs)) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const y = parts.year ?? 0;
  const mo = parts.month ?? 1;
  const d = parts.day ?? 1;
  return { y, mo, d, h: parts.hour ?? 0, mi: parts.minute ?? 0, s: parts.second ?? 0, weekday: new Date(Date.UTC(y, mo - 1, d)).getUTCDay() };
}

function offsetAt(epochMs: number, timeZone: string): number {
  const w = wallClock(epochMs, timeZone);
  return Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi, w.s) - Math.floor(epochMs / 1000) * 1000;
}

export type AutoscaleSection = z.output<typeof autoscaleSchema>;
export type AutoscaleRuleConfig = z.output<typeof ruleSchema>;
export type ScheduleProfileConfig = z.output<typeof scheduleProfileSchema>;
