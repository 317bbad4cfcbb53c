// Session traces for the simulator, as JSON lines: an optional header line, then one line per session arrival.
import { parseDuration } from '../../lib/duration.js';
import { localToEpoch, wallClock } from '../../config/autoscale-schema.js';
import { TraceError } from './errors.js';

/** One session of a trace. */
export interface TraceSession {
  /** Epoch ms it is asked for. */
  readonly atMs: number;
  readonly user: string;
  /** How long it runs once its kernel answers, in ms. */
  readonly durationMs: number;
  /** Average CPU it uses, in cores (feeds the `cpu` metric). */
  readonly cpu: number;
  /** Profile it asks for (null: the default). */
  readonly profile: string | null;
}

/** A parsed trace. */
export interface Trace {
  readonly name: string;
  /** Epoch ms the trace starts (times of day are on this date, in `timeZone`). */
  readonly startMs: number;
  readonly timeZone: string;
  readonly sessions: readonly TraceSession[];
}

/** Default trace start: Monday 5 January 2026, midnight UTC. */
const DEFAULT_START = '2026-01-05T00:00:00Z';
const HEADER_KEYS = new Set(['trace', 'start', 'timeZone']);
const SESSION_KEYS = new Set(['at', 'user', 'duration', 'cpu', 'profile']);

/**
 * Parses a JSON-lines trace. The optional first line is a header `{"trace": "name", "start": ISO, "timeZone":
 * "Europe/Stockholm"}`; every other non-blank line is `{"at", "user", "duration", "cpu"?, "profile"?}` where
 * `at` is seconds after the start, a time of day "HH:MM[:SS]" on the start's date, or an ISO timestamp, and
 * `duration` is seconds or "45m". Throws `TraceError` naming the line.
 *
 * @example
 * parseTrace('{"at":"08:05","user":"ann","duration":"3h"}\n', 'day.jsonl').sessions[0]?.durationMs; // 10800000
 */
export function parseTrace(text: string, file: string): Trace {
  let name = file;
  let startMs = Date.parse(DEFAULT_START);
  let timeZone = 'UTC';
  const sessions: TraceSession[] = [];
  const lines = text.split('\n');
  let seenSession = false;
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').trim();
    if (raw === '') continue;
    const fail = (problem: string): never => {
      throw new TraceError(file, i + 1, problem);
    };
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (error) {
      fail(`not JSON (${(error as Error).message})`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('each line must be a JSON object');
    const o = value as Record<string, unknown>;
    if (!('at' in o) && !seenSession && sessions.length === 0 && ('start' in o || 'trace' in o || 'timeZone' in o)) {
      for (const key of Object.keys(o)) if (!HEADER_KEYS.has(key)) fail(`unknown header key "${key}"; allowed: ${[...HEADER_KEYS].join(', ')}`);
      if (o.trace !== undefined) name = typeof o.trace === 'string' ? o.trace : fail('"trace" must be a string');
      if (o.timeZone !== undefined) {
        if (typeof o.timeZone !== 'string') fail('"timeZone" must be a string');
        try {
          new Intl.DateTimeFormat('en-US', { timeZone: o.timeZone as string });
        } catch {
          fail(`"timeZone": ${JSON.stringify(o.timeZone)} is not an IANA time zone`);
        }
        timeZone = o.timeZone as string;
      }
      if (o.start !== undefined) {
        const ms = typeof o.start === 'string' ? Date.parse(o.start) : Number.NaN;
        if (Number.isNaN(ms)) fail('"start" must be an ISO-8601 timestamp');
        startMs = ms;
      }
      continue;
    }
    seenSession = true;
    for (const key of Object.keys(o)) if (!SESSION_KEYS.has(key)) fail(`unknown key "${key}"; allowed: ${[...SESSION_KEYS].join(', ')}`);
    const atMs = at(o.at, startMs, timeZone) ?? fail('"at" must be seconds after the start, "HH:MM[:SS]" or an ISO timestamp');
    if (typeof o.user !== 'string' || !/^[a-z][a-z0-9_-]{0,31}$/.test(o.user)) fail('"user" must be a username ([a-z][a-z0-9_-]{0,31})');
    const durationMs = typeof o.duration === 'number'
      ? (o.duration >= 0 ? o.duration * 1000 : undefined)
      : typeof o.duration === 'string' ? parseDuration(o.duration) : undefined;
    if (durationMs === undefined) fail('"duration" must be seconds or a duration like "45m"');
    const cpu = o.cpu === undefined ? 0.25 : o.cpu;
    if (typeof cpu !== 'number' || !(cpu >= 0)) fail('"cpu" must be a number of cores, 0 or more');
    if (o.profile !== undefined && typeof o.profile !== 'string') fail('"profile" must be a profile name');
    sessions.push({ atMs, user: o.user as string, durationMs: durationMs as number, cpu: cpu as number, profile: (o.profile as string | undefined) ?? null });
  }
  sessions.sort((a, b) => a.atMs - b.atMs || a.user.localeCompare(b.user));
  return { name, startMs, timeZone, sessions };
}

function at(value: unknown, startMs: number, timeZone: string): number | undefined {
  if (typeof value === 'number') return Number.isFinite(value) && value >= 0 ? startMs + value * 1000 : undefined;
  if (typeof value !== 'string') return undefined;
  const clock = /^(\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(value);
  if (clock) {
    const [h, m, s] = [Number(clock[1]), Number(clock[2]), Number(clock[3] ?? 0)];
    if (h > 23 || m > 59 || s > 59) return undefined;
    const day = wallClock(startMs, timeZone);
    return localToEpoch(day.y, day.mo, day.d, h, m, s, timeZone);
  }
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}
