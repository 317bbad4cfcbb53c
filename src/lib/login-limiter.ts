// One limiter for every password check (the web login and the SSH front door): failures are counted per
// (user, address) pair and per address over a sliding window, and the costly hash checks themselves go through a
// small gate (a few at once, a bounded queue, at most a couple per address), so a guessing flood neither locks
// the real user out from their own address nor takes the hub's CPU.
import { isIP } from 'node:net';
import { availableParallelism } from 'node:os';

/** Limits of a {@link LoginLimiter}. */
export interface LoginLimitOptions {
  /**
   * Sliding window failures are counted over, in milliseconds.
   * @default 300_000 (5 minutes)
   */
  windowMs?: number;
  /**
   * Failures of one user name from one address within the window before that pair is refused unchecked.
   * @default 5
   */
  perPair?: number;
  /**
   * Failures from one address (any user names) within the window before the address is refused unchecked.
   * IPv6 addresses count by their /64 prefix.
   * @default 30
   */
  perAddress?: number;
  /**
   * Password checks (argon2) running at once, for the whole hub. Each takes a CPU core while it runs; half of
   * them leaves the rest for serving everything else.
   * @default half the CPUs, at least 1
   */
  maxConcurrent?: number;
  /**
   * Password checks waiting for a turn, for the whole hub; beyond that an attempt is refused as busy.
   * @default 32
   */
  maxQueued?: number;
  /**
   * Longest a check waits for its turn before it is refused as busy, in milliseconds (a login that would take
   * longer is better told to try again).
   * @default 10_000
   */
  maxWaitMs?: number;
  /**
   * Password checks one address may have running or waiting at once.
   * @default 2
   */
  perAddressInFlight?: number;
  /**
   * Pairs and addresses remembered at most (the oldest are forgotten first).
   * @default 10_000
   */
  maxKeys?: number;
}

/** {@link LoginLimitOptions} with defaults filled in. */
export type ResolvedLoginLimitOptions = Readonly<Required<LoginLimitOptions>>;

/**
 * Fills in the defaults of {@link LoginLimitOptions}; the only place they are written.
 *
 * @example
 * loginLimitDefaults({ perPair: 3 }).windowMs; // 300_000
 */
export function loginLimitDefaults(options: LoginLimitOptions = {}): ResolvedLoginLimitOptions {
  return {
    windowMs: options.windowMs ?? 300_000,
    perPair: options.perPair ?? 5,
    perAddress: options.perAddress ?? 30,
    maxConcurrent: options.maxConcurrent ?? Math.max(1, Math.floor(availableParallelism() / 2)),
    maxQueued: options.maxQueued ?? 32,
    maxWaitMs: options.maxWaitMs ?? 10_000,
    perAddressInFlight: options.perAddressInFlight ?? 2,
    maxKeys: options.maxKeys ?? 10_000,
  };
}

/**
 * What became of one attempt:
 * - `checked`: the check ran; `failed` says whether it counted as a failure, `locked` whether this failure is the
 *   one that reached a limit (audit it once).
 * - `limited`: refused without checking: too many recent failures of this pair (`by: 'pair'`) or address.
 * - `busy`: refused without checking: the hub has too many checks waiting, or this address has too many in flight.
 */
export type LoginAttempt<V> =
  | { readonly outcome: 'checked'; readonly value: V; readonly failed: boolean; readonly locked?: 'pair' | 'address' }
  | { readonly outcome: 'limited'; readonly by: 'pair' | 'address'; readonly retryAfterMs: number }
  | { readonly outcome: 'busy'; readonly by: 'queue' | 'address' | 'wait' };

/**
 * The key an address is counted under: IPv4 (also IPv4-mapped IPv6) as it is, IPv6 by its /64 prefix (one host
 * usually holds a whole /64), anything else as it is.
 *
 * @example
 * addressKey('::ffff:10.0.0.5'); // '10.0.0.5'
 * addressKey('2001:db8:1:2:3:4:5:6'); // '2001:db8:1:2::/64'
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped?.[1]) return mapped[1];
  if (isIP(address) !== 6) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::', 2) as [string, string?];
  const left = head === '' ? [] : head.split(':');
  const right = address.includes('::') && tail !== '' ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** Sliding-window failure counts under string keys, bounded in memory. */
class FailureWindow {
  readonly #hits = new Map<string, number[]>();

  constructor(private readonly windowMs: number, private readonly maxKeys: number) {}

  /** Failures within the window, and when the oldest that still counts toward `limit` leaves it. */
  count(key: string, t: number, limit: number): { n: number; retryAfterMs: number } {
    const list = this.#recent(key, t);
    const oldest = list[list.length - limit] ?? t;
    return { n: list.length, retryAfterMs: Math.max(oldest + this.windowMs - t, 1) };
  }

  add(key: string, t: number): number {
    const list = this.#recent(key, t);
    list.push(t);
    this.#hits.delete(key);
    this.#hits.set(key, list.slice(-256));
    while (this.#hits.size > this.maxKeys) {
      const first = this.#hits.keys().next().value;
      if (first === undefined) break;
      this.#hits.delete(first);
    }
    return list.length;
  }

  clear(key: string): void {
    this.#hits.delete(key);
  }

  #recent(key: string, t: number): number[] {
    const list = (this.#hits.get(key) ?? []).filter((at) => at > t - this.windowMs);
    if (list.length === 0) this.#hits.delete(key);
    else this.#hits.set(key, list);
    return list;
  }
}

/**
 * Counts failed logins per (user, address) pair and per address, and runs password checks through a bounded
 * gate. A stranger's failures only ever limit the stranger's own address, never the user arriving from another.
 *
 * @example
 * const limiter = new LoginLimiter();
 * const attempt = await limiter.attempt('alice', '10.0.0.5', () => verify(password), (ok) => !ok);
 * if (attempt.outcome === 'limited') return tooMany(attempt.retryAfterMs);
 */
export class LoginLimiter {
  readonly limits: ResolvedLoginLimitOptions;
  readonly #pairs: FailureWindow;
  readonly #addresses: FailureWindow;
  readonly #inFlight = new Map<string, number>();
  readonly #waiting: ((go: boolean) => void)[] = [];
  #running = 0;

  constructor(options: LoginLimitOptions = {}, private readonly now: () => number = Date.now) {
    this.limits = loginLimitDefaults(options);
    this.#pairs = new FailureWindow(this.limits.windowMs, this.limits.maxKeys);
    this.#addresses = new FailureWindow(this.limits.windowMs, this.limits.maxKeys);
  }

  /** Says whether an attempt by `user` from `address` would be refused unchecked now. */
  check(user: string, address: string): { by: 'pair' | 'address'; retryAfterMs: number } | undefined {
    const t = this.now();
    const key = addressKey(address);
    const byAddress = this.#addresses.count(key, t, this.limits.perAddress);
    if (byAddress.n >= this.limits.perAddress) return { by: 'address', retryAfterMs: byAddress.retryAfterMs };
    const byPair = this.#pairs.count(pairKey(user, key), t, this.limits.perPair);
    if (byPair.n >= this.limits.perPair) return { by: 'pair', retryAfterMs: byPair.retryAfterMs };
    return undefined;
  }

  /**
   * Records a failure that cost no password check (a bad key signature, an invalid name); says which limit it
   * reached, if this is the failure that reached one.
   */
  fail(user: string, address: string): 'pair' | 'address' | undefined {
    const t = this.now();
    const key = addressKey(address);
    const pair = this.#pairs.add(pairKey(user, key), t);
    const byAddress = this.#addresses.add(key, t);
    if (byAddress === this.limits.perAddress) return 'address';
    if (pair === this.limits.perPair) return 'pair';
    return undefined;
  }

  /** Forgets the pair's failures (after a successful login). */
  succeed(user: string, address: string): void {
    this.#pairs.clear(pairKey(user, addressKey(address)));
  }

  /** Password checks running and waiting now (for metrics and tests). */
  load(): { running: number; queued: number } {
    return { running: this.#running, queued: this.#waiting.length };
  }

  /**
   * Runs one password check under the limits: refused unchecked when the pair or address is limited or the gate
   * is full; otherwise `verify` runs when its turn comes and `failed(value)` says whether to count a failure.
   */
  async attempt<V>(user: string, address: string, verify: () => Promise<V>, failed: (value: V) => boolean): Promise<LoginAttempt<V>> {
    const limited = this.check(user, address);
    if (limited !== undefined) return { outcome: 'limited', ...limited };
    const key = addressKey(address);
    const mine = this.#inFlight.get(key) ?? 0;
    if (mine >= this.limits.perAddressInFlight) return { outcome: 'busy', by: 'address' };
    if (this.#running >= this.limits.maxConcurrent && this.#waiting.length >= this.limits.maxQueued) return { outcome: 'busy', by: 'queue' };
    this.#inFlight.set(key, mine + 1);
    try {
      // A finishing check hands its slot straight to the next in line, so the count never overshoots.
      if (this.#running < this.limits.maxConcurrent) this.#running++;
      else if (!(await this.#turn())) return { outcome: 'busy', by: 'wait' };
      let value: V;
      try {
        value = await verify();
      } finally {
        const next = this.#waiting.shift();
        if (next !== undefined) next(true);
        else this.#running--;
      }
      if (!failed(value)) {
        this.succeed(user, address);
        return { outcome: 'checked', value, failed: false };
      }
      const locked = this.fail(user, address);
      return locked === undefined ? { outcome: 'checked', value, failed: true } : { outcome: 'checked', value, failed: true, locked };
    } finally {
      const left = (this.#inFlight.get(key) ?? 1) - 1;
      if (left <= 0) this.#inFlight.delete(key);
      else this.#inFlight.set(key, left);
    }
  }

  /** Waits in line for a running slot: true once it is handed one, false when `maxWaitMs` passed first. */
  #turn(): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => {
        const at = this.#waiting.indexOf(wake);
        if (at !== -1) this.#waiting.splice(at, 1);
        resolve(false);
      }, this.limits.maxWaitMs);
      const wake = (go: boolean): void => {
        clearTimeout(timer);
        resolve(go);
      };
      this.#waiting.push(wake);
    });
  }
}

function pairKey(user: string, address: string): string {
  return `${address}\u0000${user}`;
}
