// The hub's half of the user-host handshake (`gateway.userHost`): a browser logged in on the hub's host is sent
// to a user host with a one-time code; the gateway trades the code here for a login that only that host's
// cookie carries. Logging out on the hub ends the host logins made from it.
import type { Store } from '../store/types.js';
import { hashSecret, newSecret } from './credentials.js';

/** How long a handshake code may wait to be traded, in ms. */
const CODE_TTL_MS = 60_000;
/** Codes waiting at most (the oldest are dropped first). */
const MAX_CODES = 10_000;

interface PendingCode {
  /** Who is logging in. */
  readonly user: string;
  /** Whose host the code is for. */
  readonly host: string;
  /** SHA-256 of the hub login cookie it came from. */
  readonly from: string;
  readonly expiresAt: number;
}

/** What the handshake needs. */
export interface UserHostLoginsContext {
  readonly store: Pick<Store, 'createLogin' | 'findLogin' | 'deleteLogin'>;
}

/**
 * One-time codes and the host logins made from them.
 *
 * @example
 * const code = logins.issue('admin', 'alice', hubCookie);
 * const cookie = await logins.redeem(code, 'alice'); // a login cookie for alice.pool.example only
 */
export class UserHostLogins {
  readonly #codes = new Map<string, PendingCode>();
  /** Hub login hash → hashes of the host logins made from it (kept in memory: lost on a hub restart). */
  readonly #made = new Map<string, Set<string>>();

  constructor(private readonly ctx: UserHostLoginsContext, private readonly now: () => number = Date.now) {}

  /** A code that lets `user` (logged in with `hubCookie`) in on `host`'s host once, within a minute. */
  issue(user: string, host: string, hubCookie: string): string {
    const code = newSecret();
    this.#codes.set(hashSecret(code), { user, host, from: hashSecret(hubCookie), expiresAt: this.now() + CODE_TTL_MS });
    while (this.#codes.size > MAX_CODES) {
      const first = this.#codes.keys().next().value;
      if (first === undefined) break;
      this.#codes.delete(first);
    }
    return code;
  }

  /**
   * Trades a code that arrived at `host`'s host for a new login cookie (expiring with the hub login it came from);
   * `undefined` when the code is unknown, used, expired, for another host, or its hub login has ended.
   */
  async redeem(code: string, host: string): Promise<string | undefined> {
    const key = hashSecret(code);
    const pending = this.#codes.get(key);
    this.#codes.delete(key);
    if (pending === undefined || pending.host !== host || pending.expiresAt <= this.now()) return undefined;
    const hubLogin = await this.ctx.store.findLogin(pending.from);
    if (hubLogin === undefined || hubLogin.user !== pending.user || new Date(hubLogin.expiresAt).getTime() <= this.now()) return undefined;
    const cookie = newSecret();
    const hash = hashSecret(cookie);
    await this.ctx.store.createLogin({ hash, user: pending.user, created: new Date(this.now()).toISOString(), expiresAt: hubLogin.expiresAt });
    const made = this.#made.get(pending.from) ?? new Set<string>();
    made.add(hash);
    this.#made.set(pending.from, made);
    return cookie;
  }

  /** Ends the host logins made from the hub login `hubCookie` (at logout). */
  async logout(hubCookie: string): Promise<void> {
    const from = hashSecret(hubCookie);
    const made = this.#made.get(from);
    this.#made.delete(from);
    for (const hash of made ?? []) await this.ctx.store.deleteLogin(hash);
  }
}
