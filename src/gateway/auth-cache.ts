// The gateway's memory of who a credential belongs to: bounded, with separate TTLs for known and unknown credentials.
import type { Identity } from '../protocol/gateway.js';

/** Which kind of credential a lookup is for: the browser login cookie or an API token. */
export type CredentialKind = 'cookie' | 'token';

interface Entry {
  /** `null` = the hub said this credential is invalid (negative entry). */
  readonly identity: Identity | null;
  readonly expiresAtMs: number;
}

/** Sizes and lifetimes of an {@link AuthCache}; all fields required (filled by the hub link's defaults). */
export interface AuthCacheLimits {
  /** How long a valid credential's identity is reused, in milliseconds. */
  readonly positiveTtlMs: number;
  /** How long "not a valid credential" is remembered, in milliseconds. */
  readonly negativeTtlMs: number;
  /** Most entries kept per credential kind; the oldest are dropped first. */
  readonly maxEntries: number;
}

/**
 * Identities by credential, one map per kind so the hot path builds no key string. Entries expire after their
 * TTL or at the credential's own `expiresAtMs`, whichever comes first; when a map is full the oldest entry goes. `revoke()` bumps `generation`, so a lookup that started before
 * a revoke can tell that its answer must not be cached.
 *
 * @example
 * const cache = new AuthCache({ positiveTtlMs: 60_000, negativeTtlMs: 5_000, maxEntries: 10_000 });
 * cache.set('token', 't0k', { user: 'alice', admin: false }, cache.generation);
 * cache.get('token', 't0k'); // { user: 'alice', admin: false }
 */
export class AuthCache {
  #cookies = new Map<string, Entry>();
  #tokens = new Map<string, Entry>();
  #generation = 0;

  constructor(private readonly limits: AuthCacheLimits) {}

  /** Incremented by every `revoke()`. */
  get generation(): number {
    return this.#generation;
  }

  /** Number of entries of both kinds (expired ones included until they are next read). */
  get size(): number {
    return this.#cookies.size + this.#tokens.size;
  }

  /** The cached identity, `null` for a cached refusal, `undefined` when unknown or expired. */
  get(kind: CredentialKind, value: string, nowMs = Date.now()): Identity | null | undefined {
    const map = kind === 'token' ? this.#tokens : this.#cookies;
    const entry = map.get(value);
    if (entry === undefined) return undefined;
    if (entry.expiresAtMs <= nowMs) {
      map.delete(value);
      return undefined;
    }
    return entry.identity;
  }

  /** Remembers a hub answer, unless a revoke happened since the lookup started (`generation` changed). */
  set(kind: CredentialKind, value: string, identity: Identity | null, generation: number, nowMs = Date.now()): void {
    if (generation !== this.#generation) return;
    const map = kind === 'token' ? this.#tokens : this.#cookies;
    map.delete(value);
    while (map.size >= this.limits.maxEntries) {
      const oldest = map.keys().next();
      if (oldest.done === true) break;
      map.delete(oldest.value);
    }
    const ttlMs = identity === null ? this.limits.negativeTtlMs : this.limits.positiveTtlMs;
    // Never past the credential's own end: an expiring token is refused at its `expires_at`, not a TTL later.
    const expiresAtMs = Math.min(nowMs + ttlMs, identity?.expiresAtMs ?? Number.POSITIVE_INFINITY);
    if (expiresAtMs <= nowMs) return;
    map.set(value, { identity, expiresAtMs });
  }

  /** Forgets every entry, or only the entries whose identity is `user`'s. */
  revoke(user?: string): void {
    this.#generation++;
    if (user === undefined) {
      this.#cookies.clear();
      this.#tokens.clear();
      return;
    }
    for (const map of [this.#cookies, this.#tokens]) {
      for (const [value, entry] of map) if (entry.identity?.user === user) map.delete(value);
    }
  }
}
