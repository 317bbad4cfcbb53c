import { describe, expect, it } from 'vitest';
import { poolSchema } from '../../config/pool-schema.js';
import { autoscaleSettings } from './options.js';
import { activeProfile } from './schedule.js';

const settings = (profiles: unknown[]) => autoscaleSettings({ pool: poolSchema.parse({ min: 0, max: 20, autoscale: { profiles } }) } as never);
const at = (iso: string, s: ReturnType<typeof settings>) => activeProfile(s.profiles, Date.parse(iso)).name;

describe('autoscale profiles', () => {
  const s = settings([
    { name: 'workday', min: 2, recurrence: { days: 'weekdays', start: '08:00', end: '18:00', timeZone: 'Europe/Stockholm' } },
    { name: 'exam', min: 10, fixedDate: { start: '2026-03-30T09:00', end: '2026-03-30T12:00', timeZone: 'Europe/Stockholm' } },
  ]);

  it('follows local time across a daylight-saving change', () => {
    // Friday 27 March 2026 is CET (UTC+1); Monday 30 March is CEST (UTC+2): 08:00 local moves from 07:00Z to 06:00Z.
    expect(at('2026-03-27T06:59:00Z', s)).toBe('default');
    expect(at('2026-03-27T07:00:00Z', s)).toBe('workday');
    expect(at('2026-03-30T05:59:00Z', s)).toBe('default');
    expect(at('2026-03-30T06:00:00Z', s)).toBe('workday');
    expect(at('2026-03-30T15:59:00Z', s)).toBe('workday');
    expect(at('2026-03-30T16:00:00Z', s)).toBe('default');
    // Sunday 29 March (the change itself) is not a weekday.
    expect(at('2026-03-29T09:00:00Z', s)).toBe('default');
  });

  it('prefers a fixed date over a recurrence over the default', () => {
    expect(at('2026-03-30T06:59:00Z', s)).toBe('workday');
    expect(at('2026-03-30T07:00:00Z', s)).toBe('exam');
    expect(at('2026-03-30T09:59:00Z', s)).toBe('exam');
    expect(at('2026-03-30T10:00:00Z', s)).toBe('workday');
  });

  it('carries a recurrence without an end across a month boundary until the next one starts', () => {
    const weekly = settings([
      { name: 'monday', min: 3, recurrence: { days: 'mon', start: '07:00', timeZone: 'UTC' } },
      { name: 'weekend', max: 1, recurrence: { days: 'sat', start: '09:00', timeZone: 'UTC' } },
    ]);
    // Monday 26 January 07:00 → Saturday 31 January 09:00 → Sunday 1 February → Monday 2 February 07:00.
    expect(at('2026-01-26T06:59:00Z', weekly)).toBe('weekend'); // the one from Saturday 24 January
    expect(at('2026-01-31T08:59:00Z', weekly)).toBe('monday');
    expect(at('2026-01-31T09:00:00Z', weekly)).toBe('weekend');
    expect(at('2026-02-01T12:00:00Z', weekly)).toBe('weekend');
    expect(at('2026-02-02T06:59:00Z', weekly)).toBe('weekend');
    expect(at('2026-02-02T07:00:00Z', weekly)).toBe('monday');
  });

  it('ends a night profile the next morning and falls back to the default', () => {
    const night = settings([{ name: 'night', max: 1, recurrence: { days: 'daily', start: '22:00', end: '06:00', timeZone: 'America/New_York' } }]);
    expect(at('2026-02-28T03:30:00Z', night)).toBe('night'); // 22:30 on the 27th in New York
    expect(at('2026-03-01T10:59:00Z', night)).toBe('night'); // 05:59 on 1 March
    expect(at('2026-03-01T11:00:00Z', night)).toBe('default');
  });
});
