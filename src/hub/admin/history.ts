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

  /** Points from `sinceMs` on (with the one before it, if any), oldest first. */
  points(sinceMs: number): SizePoint[] {
    const firstIn = this.list.findIndex((p) => p.atMs >= sinceMs);
    if (firstIn < 0) return this.list.slice(-1);
    return this.list.slice(Math.max(0, firstIn - 1));
  }
}
