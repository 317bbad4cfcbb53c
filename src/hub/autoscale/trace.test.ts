import { describe, expect, it } from 'vitest';
import { TraceError } from './errors.js';
import { parseTrace } from './trace.js';

describe('trace parsing', () => {
  it('reads a header, times of day in its zone, seconds and ISO times, and durations in both forms', () => {
    const trace = parseTrace(
      [
        '{"trace":"t","start":"2026-03-30T00:00:00+02:00","timeZone":"Europe/Stockholm"}',
        '',
        '{"at":"08:00","user":"ann","duration":"1h30m","cpu":0.5}',
        '{"at":60,"user":"bob","duration":600,"profile":"gpu"}',
        '{"at":"2026-03-30T09:00:00Z","user":"cid","duration":"5m"}',
      ].join('\n'),
      'x.jsonl',
    );
    expect(trace.name).toBe('t');
    expect(trace.sessions.map((s) => [s.user, new Date(s.atMs).toISOString(), s.durationMs, s.cpu, s.profile])).toEqual([
      ['bob', '2026-03-29T22:01:00.000Z', 600_000, 0.25, 'gpu'],
      ['ann', '2026-03-30T06:00:00.000Z', 5_400_000, 0.5, null],
      ['cid', '2026-03-30T09:00:00.000Z', 300_000, 0.25, null],
    ]);
  });

  it('names the line of a bad entry', () => {
    const bad = (text: string) => {
      try {
        parseTrace(text, 'day.jsonl');
      } catch (error) {
        expect(error).toBeInstanceOf(TraceError);
        return `${(error as TraceError).line}: ${(error as TraceError).problem}`;
      }
      throw new Error('no error');
    };
    expect(bad('{"at":1,"user":"ann","duration":5}\n{"at":2,"user":"bob",')).toMatch(/^2: not JSON/);
    expect(bad('\n\n{"at":"25:00","user":"ann","duration":5}')).toMatch(/^3: "at" must be/);
    expect(bad('{"at":1,"user":"Ann","duration":5}')).toMatch(/^1: "user" must be a username/);
    expect(bad('{"at":1,"user":"ann","duration":"soon"}')).toMatch(/^1: "duration" must be/);
    expect(bad('{"at":1,"user":"ann","duration":5,"gpu":1}')).toMatch(/^1: unknown key "gpu"/);
    expect(bad('[1,2]')).toMatch(/^1: each line must be a JSON object/);
  });
});
