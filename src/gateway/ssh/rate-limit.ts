// Counts failed SSH logins per username and per source address over a sliding window.

/** Which limit refused an attempt. */
export interface RateLimited {
  by: 'user' | 'address';
  /** Milliseconds until an attempt would be counted again. */
  retryAfterMs: number;
}

/**
 * Sliding-window failure counter. Memory is bounded: at most `maxKeys` users and addresses are tracked (the
 * oldest are forgotten first).
 *
 * @example
 * const limiter = new FailureLimiter({ windowMs: 300_000, perUser: 10, perAddress: 30 });
 * if (limiter.check('alice', '10.0.0.5')) return refuse();
 * limiter.fail('alice', '10.0.0.5');
 */
export class FailureLimiter {
  readonly #users = new Map<string, number[]>();
  readonly #addresses = new Map<string, number[]>();

  constructor(
    private readonly limits: { windowMs: number; perUser: number; perAddress: number },
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 10_000,
  ) {}

  /** Says which limit, if any, refuses an attempt now. */
  check(user: string, address: string): RateLimited | undefined {
    const t = this.now();
    const byAddress = this.#over(this.#addresses, address, this.limits.perAddress, t);
    if (byAddress !== undefined) return { by: 'address', retryAfterMs: byAddress };
    const byUser = this.#over(this.#users, user, this.limits.perUser, t);
    if (byUser !== undefined) return { by: 'user', retryAfterMs: byUser };
    return undefined;
  }

  /** Records one failed attempt. */
  fail(user: string, address: string): void {
    const t = this.now();
    this.#add(this.#users, user, t);
    this.#add(this.#addresses, address, t);
  }

  #recent(map: Map<string, number[]>, key: string, t: number): number[] {
    const list = (map.get(key) ?? []).filter((at) => at > t - this.limits.windowMs);
    if (list.length === 0) map.delete(key);
    else map.set(key, list);
    return list;
  }

  #over(map: Map<string, number[]>, key: string, limit: number, t: number): number | undefined {
    const list = this.#recent(map, key, t);
    if (list.length < limit) return undefined;
    const oldest = list[list.length - limit] ?? t;
    return Math.max(oldest + this.limits.windowMs - t, 1);
  }

  #add(map: Map<string, number[]>, key: string, t: number): void {
    const list = this.#recent(map, key, t);
    list.push(t);
    map.delete(key);
    map.set(key, list.slice(-1000));
    while (map.size > this.maxKeys) {
      const first = map.keys().next().value;
      if (first === undefined) break;
      map.delete(first);
    }
  }
}
