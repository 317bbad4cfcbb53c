import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { parseConfig } from './load.js';

function problems(pool: string): string[] {
  try {
    parseConfig(`share: { path: /srv/share }\npool: ${pool}\n`, '/etc/dspool/pool.yaml');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

describe('pool.autoscale in pool.yaml', () => {
  it('fills every default in one place', () => {
    const config = parseConfig('share: { path: /srv/share }\n', '/etc/dspool/pool.yaml');
    expect(config.pool.min).toBe(0);
    expect(config.pool.max).toBe(10);
    expect(config.pool.autoscale).toEqual({
      enabled: false, interval: 5000, warmSlots: 0, scaleInPolicy: 'fewest-sessions', scaleInDelay: 60_000, wakeHold: 300_000, rules: [], profiles: [],
    });
    const rule = parseConfig(
      'share: { path: /s }\npool: { autoscale: { rules: [ { trigger: { metric: cpu, operator: GreaterThan, threshold: 70 }, action: { direction: Increase } } ] } }',
      '/p.yaml',
    ).pool.autoscale.rules[0];
    expect(rule).toEqual({
      trigger: { metric: 'cpu', statistic: 'avg', grain: 60_000, window: 300_000, aggregation: 'avg', operator: '>', threshold: 70 },
      action: { direction: 'out', type: 'ChangeCount', value: 1, cooldown: 300_000 },
    });
  });

  it('refuses an unknown metric and a window shorter than its grain, naming the rule', () => {
    expect(problems('{ autoscale: { rules: [ { trigger: { metric: gpu, operator: ">", threshold: 1 }, action: { direction: out } } ] } }')).toEqual([
      expect.stringMatching(/^pool\.autoscale\.rules\.0\.trigger\.metric: unknown metric "gpu"; known: sessionsPerInstance, freeSlots, queued, activeUsers, cpu, memory/),
    ]);
    expect(problems('{ autoscale: { rules: [ { trigger: { metric: cpu, grain: 5m, window: 1m, operator: ">", threshold: 1 }, action: { direction: out } } ] } }')).toEqual([
      expect.stringMatching(/^pool\.autoscale\.rules\.0\.trigger\.window: is shorter than its grain/),
    ]);
  });

  it('refuses min above max, a profile outside them, overlapping fixed dates and a bad schedule', () => {
    expect(problems('{ min: 3, max: 2 }')).toEqual([expect.stringMatching(/^pool\.min: is more than max \(3 > 2\)/)]);
    expect(problems('{ min: 1, max: 4, autoscale: { profiles: [ { name: big, max: 9, recurrence: { days: weekdays, start: "08:00" } } ] } }')).toEqual([
      expect.stringMatching(/^pool\.autoscale\.profiles\.0\.max: 9 is outside pool\.min\.\.pool\.max \(1\.\.4\)/),
    ]);
    expect(
      problems(`{ autoscale: { profiles: [
        { name: a, fixedDate: { start: "2026-12-14T08:00", end: "2026-12-14T17:00", timeZone: Europe/Stockholm } },
        { name: b, fixedDate: { start: "2026-12-14T16:00", end: "2026-12-15T08:00", timeZone: Europe/Stockholm } } ] } }`),
    ).toEqual([expect.stringMatching(/^pool\.autoscale\.profiles\.1\.fixedDate: overlaps fixed-date profile "a" \(profiles\.0\)/)]);
    expect(problems('{ autoscale: { profiles: [ { name: a, recurrence: { days: [funday], start: "8am", timeZone: Mars/Olympus } } ] } }')).toEqual([
      expect.stringMatching(/^pool\.autoscale\.profiles\.0\.recurrence\.days: "funday" is not a day/),
      expect.stringMatching(/^pool\.autoscale\.profiles\.0\.recurrence\.start: write a time of day as HH:MM/),
      expect.stringMatching(/^pool\.autoscale\.profiles\.0\.recurrence\.timeZone: "Mars\/Olympus" is not an IANA time zone/),
    ]);
  });
});
