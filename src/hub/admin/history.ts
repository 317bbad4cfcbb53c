// The pool's size over the last day, for the admin page's chart: a point whenever the number of instances or of
// ready ones changes, and one every few minutes otherwise, kept for `windowMs`.

/** The pool at one moment. */
export interface SizePoint {
  /** Epoch ms. */
  readonly atMs: number;
  /** Instances that exist (starting, ready, draining, unhealthy…; not deleted). */
  readonly instances: number;
  /** Instances ready for sessions. */
  readonly ready: number;
}

/**
 * A day of pool sizes in memory (a restarted hub starts a new history; its events keep the longer record).
 *
 * @example
 * const history = new PoolHistory(86_400_000, 300_000);
 * history.record(Date.now(), 3, 2);
 * history.points(Date.now() - 86_400_000);
 */
export class PoolHistory {
  private readonly list: SizePoint[] = [];

  /**
   * @param windowMs How far back points are kept, in ms.
   * @param sampleEveryMs A point is added this often even without a change, in ms.
   */
  constructor(private readonly windowMs: number, private readonly sampleEveryMs: number) {}

  /** Adds a point when the size changed or the last one is older than `sampleEveryMs`; drops points past the window. */
  record(atMs: number, instances: number, ready: number): void {
    const last = this.list.at(-1);
    if (last && last.instances === instances && last.ready === ready && atMs - last.atMs < this.sampleEveryMs) return;
    this.list.push({ atMs, instances, ready });
    const oldest = atMs - this.windowMs;
    // Keep one point before the window so the line starts at its left edge.
    while (this.list.length > 2 && (this.list[1]?.atMs ?? atMs) < oldest) this.list.shift();
  }

  /** Adds points from before this hub started (oldest first, older than any recorded), e.g. `sizesFromEvents`. */
  preload(points: readonly SizePoint[]): void {
    const first = this.list[0]?.atMs ?? Number.POSITIVE_INFINITY;
    this.list.unshift(...points.filter((p) => p.atMs < first));
  }

  /** Points from `sinceMs` on (with the one before it, if any), oldest first. */
  points(sinceMs: number): SizePoint[] {
    const firstIn = this.list.findIndex((p) => p.atMs >= sinceMs);
    if (firstIn < 0) return this.list.slice(-1);
    return this.list.slice(Math.max(0, firstIn - 1));
  }
}

/** An event as `sizesFromEvents` reads it. */
export interface InstanceEvent {
  readonly time: string;
  readonly kind: string;
  readonly instanceId: string | null;
  readonly data: Readonly<Record<string, unknown>>;
}

const EXISTS = (state: string | undefined): boolean => state !== undefined && state !== 'deleted';

/**
 * The pool's size before now, rebuilt from the event log (so the chart covers hub restarts): starting from the
 * instances' states now, each `instance.state` event read backwards restores its `from` state and each
 * `instance.created` removes the instance. Returns points oldest first, from `sinceMs` on (plus the size then).
 *
 * @example
 * sizesFromEvents(new Map([['i-1', 'ready']]), await store.listEvents({ limit: 100_000 }), Date.now() - 86_400_000);
 */
export function sizesFromEvents(current: ReadonlyMap<string, string>, newestFirst: readonly InstanceEvent[], sinceMs: number): SizePoint[] {
  const states = new Map(current);
  const count = (atMs: number): SizePoint => {
    let instances = 0;
    let ready = 0;
    for (const state of states.values()) {
      if (EXISTS(state)) instances++;
      if (state === 'ready') ready++;
    }
    return { atMs, instances, ready };
  };
  const points: SizePoint[] = [];
  for (const event of newestFirst) {
    const atMs = Date.parse(event.time);
    if (!Number.isFinite(atMs) || event.instanceId === null) continue;
    if (event.kind !== 'instance.state' && event.kind !== 'instance.created') continue;
    points.push(count(atMs));
    if (atMs < sinceMs) break;
    if (event.kind === 'instance.created') states.delete(event.instanceId);
    else if (typeof event.data.from === 'string') states.set(event.instanceId, event.data.from);
  }
  // The size just before the oldest event read holds from there back to the window's start.
  points.push(count(Math.min(sinceMs, points.at(-1)?.atMs ?? sinceMs)));
  return points.reverse().filter((p, i, all) => i === 0 || p.atMs !== all[i - 1]?.atMs || p.instances !== all[i - 1]?.instances);
}
