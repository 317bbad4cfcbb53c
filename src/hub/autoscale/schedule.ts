// Which profile is active at an instant: a fixed date wins over a recurrence, which wins over the default.
// A recurrence without an end lasts until the next recurring profile starts (Azure's rule).
import { localToEpoch, wallClock } from '../../config/autoscale-schema.js';
import type { Profile } from './options.js';


/**
 * The profile active at `nowMs`: a fixed-date profile covering it, else the recurring profile that started last
 * (and has not ended), else the default (the first profile).
 *
 * @example
 * activeProfile(settings.profiles, Date.parse('2026-03-30T06:30:00Z')).name; // 'workday' on a Monday 08:30 in Stockholm
 */
export function activeProfile(profiles: readonly Profile[], nowMs: number): Profile {
  const fallback = profiles.find((p) => p.kind === 'default') ?? profiles[0];
  if (!fallback) throw new RangeError('autoscale needs at least the default profile');
  for (const p of profiles) if (p.fixed && p.fixed.startMs <= nowMs && nowMs < p.fixed.endMs) return p;
  let latest: { profile: Profile; startMs: number; endMs: number } | undefined;
  for (const p of profiles) {
    const start = lastStart(p, nowMs);
    if (start && (!latest || start.startMs > latest.startMs)) latest = { profile: p, ...start };
  }
  return latest && nowMs < latest.endMs ? latest.profile : fallback;
}

/** The latest start of a recurring profile at or before `nowMs` (within a week), with its end. */
function lastStart(p: Profile, nowMs: number): { startMs: number; endMs: number } | undefined {
  const r = p.recurrence;
  if (!r) return undefined;
  const today = wallClock(nowMs, r.timeZone);
  for (let back = 0; back <= 7; back++) {
    const day = new Date(Date.UTC(today.y, today.mo - 1, today.d - back));
    if (!r.days.includes(day.getUTCDay())) continue;
    const y = day.getUTCFullYear();
    const mo = day.getUTCMonth() + 1;
    const d = day.getUTCDate();
    const startMs = localToEpoch(y, mo, d, Math.floor(r.startMin / 60), r.startMin % 60, 0, r.timeZone);
    if (startMs > nowMs) continue;
    let endMs = Number.POSITIVE_INFINITY;
    if (r.endMin !== undefined) {
      // An end at or before the start is on the next day (a night profile).
      const endDay = r.endMin > r.startMin ? d : d + 1;
      const e = new Date(Date.UTC(y, mo - 1, endDay));
      endMs = localToEpoch(e.getUTCFullYear(), e.getUTCMonth() + 1, e.getUTCDate(), Math.floor(r.endMin / 60), r.endMin % 60, 0, r.timeZone);
    }
    return { startMs, endMs };
  }
  return undefined;
}
