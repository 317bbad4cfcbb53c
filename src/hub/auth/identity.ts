// Who is calling: resolves API tokens and login cookies, logs users in and out, issues tokens.
import type { Identity } from '../../protocol/gateway.js';
import type { Store, TokenRecord, UserRecord } from '../store/types.js';
import { hashPassword, hashSecret, newSecret, verifyPassword } from './credentials.js';
import { sameSecret } from '../../lib/secret.js';
import { BadRequestError, ForbiddenError, UserNotFoundError } from '../errors.js';
import { checkRequestedScopes, ownerScopes, tokenScopes, type Scopes } from './scopes.js';

/** Name of the built-in identity behind the admin token the hub writes for the CLI; not a valid username. */
export const SERVICE_IDENTITY = '*dspool-cli';

/** What the identity service needs. */
export interface IdentityContext {
  readonly store: Store;
  /** The admin token handed to the CLI through dataDir (not stored in the database). */
  readonly adminToken: string;
  readonly cookieMaxAgeMs: number;
}

/**
 * A caller the hub recognised: who they are, what this very credential may do (its scopes, never more than its
 * owner holds now), and whether it holds everything its owner does (a login cookie, an `inherit` token).
 */
export interface Caller {
  readonly identity: Identity;
  readonly scopes: Scopes;
  /** True when the credential holds all of its owner's scopes (then pages and admin-only routes accept it). */
  readonly full: boolean;
  /** The token's record, when the credential is a stored API token. */
  readonly token: TokenRecord | undefined;
}

/** A token just created: the record plus the secret, shown once. */
export interface IssuedToken {
  readonly record: TokenRecord;
  readonly token: string;
}

/** Options for issuing a token. */
export interface TokenOptions {
  /** @default '' */
  readonly note?: string;
  /** @default ['inherit'] (everything the owner may do) */
  readonly scopes?: readonly string[];
  /** Lifetime in seconds; null or absent = never expires. */
  readonly expiresInSeconds?: number | null;
  /**
   * The scopes of the credential asking for the token; the new token may not hold more (403 naming the excess),
   * and `inherit` from a narrower credential stores that credential's scopes instead.
   * @default the owner's own scopes (no limit beyond the owner)
   */
  readonly requester?: Scopes;
}

// A fixed argon2 hash checked when the user does not exist, so a wrong name costs as long as a wrong password.
let decoyHash: Promise<string> | undefined;

/**
 * Logins, login cookies and API tokens: turns a credential into the identity and scopes of its caller.
 *
 * @example
 * const identities = new IdentityService({ store, adminToken, cookieMaxAgeMs: config.hub.cookieMaxAge });
 * const cookie = await identities.login('alice', 'correct horse'); // the login cookie, or null
 * (await identities.resolveCookie(cookie ?? ''))?.user; // 'alice'
 */
export class IdentityService {
  constructor(private readonly ctx: IdentityContext) {}

  /**
   * Resolves an API token (`Authorization: token …`) to its caller; expired tokens and disabled users resolve to
   * null. The scopes are the token's, intersected with what its owner holds now.
   *
   * @example
   * const caller = await identities.authenticateToken(token);
   * caller?.scopes.allows('servers', 'alice');
   */
  async authenticateToken(token: string): Promise<Caller | null> {
    if (!token) return null;
    if (sameSecret(token, this.ctx.adminToken)) {
      const scopes = ownerScopes({ name: SERVICE_IDENTITY, admin: true });
      return { identity: { user: SERVICE_IDENTITY, admin: true, servers: '*' }, scopes, full: true, token: undefined };
    }
    const record = await this.ctx.store.findTokenByHash(hashSecret(token));
    if (!record) return null;
    const now = new Date();
    const expiresAtMs = record.expiresAt === null ? undefined : new Date(record.expiresAt).getTime();
    if (expiresAtMs !== undefined && expiresAtMs <= now.getTime()) return null;
    const user = await this.ctx.store.getUser(record.user);
    if (!user || user.disabled) return null;
    void this.ctx.store.touchToken(record.id, now.toISOString());
    return { ...callerOf(user, tokenScopes(user, record.scopes), expiresAtMs), token: record };
  }

  /** Resolves a browser login cookie to its caller (all of the user's scopes). */
  async authenticateCookie(cookie: string): Promise<Caller | null> {
    if (!cookie) return null;
    const login = await this.ctx.store.findLogin(hashSecret(cookie));
    const expiresAtMs = login ? new Date(login.expiresAt).getTime() : 0;
    if (!login || expiresAtMs <= Date.now()) return null;
    const user = await this.ctx.store.getUser(login.user);
    if (!user || user.disabled) return null;
    return { ...callerOf(user, ownerScopes(user), expiresAtMs), token: undefined };
  }

  /**
   * Resolves an API token to who it belongs to (what the gateway caches); null when invalid.
   *
   * @example
   * const who = await identities.resolveToken(token); // { user: 'alice', admin: false, servers: ['alice'] } | null
   */
  async resolveToken(token: string): Promise<Identity | null> {
    return (await this.authenticateToken(token))?.identity ?? null;
  }

  /** The stored record of a token (for `GET /hub/api/user`'s scopes and token id), if it is one. */
  findToken(token: string): Promise<TokenRecord | undefined> {
    return this.ctx.store.findTokenByHash(hashSecret(token));
  }

  /** Resolves a browser login cookie to who it belongs to; null when invalid. */
  async resolveCookie(cookie: string): Promise<Identity | null> {
    return (await this.authenticateCookie(cookie))?.identity ?? null;
  }

  /** Checks a password; returns a new login cookie value, or null (same for unknown user, wrong password, disabled). */
  async login(name: string, password: string): Promise<string | null> {
    const user = await this.ctx.store.getUser(name);
    if (!user || user.passwordHash === null || user.disabled) {
      decoyHash ??= hashPassword(newSecret());
      await verifyPassword(await decoyHash, password);
      return null;
    }
    if (!(await verifyPassword(user.passwordHash, password))) return null;
    const cookie = newSecret();
    const now = Date.now();
    await this.ctx.store.createLogin({
      hash: hashSecret(cookie),
      user: user.name,
      created: new Date(now).toISOString(),
      expiresAt: new Date(now + this.ctx.cookieMaxAgeMs).toISOString(),
    });
    await this.ctx.store.updateUser(user.name, { lastActivity: new Date(now).toISOString() });
    return cookie;
  }

  /**
   * Checks a password without creating a login (the SSH front door): `unknown` for no such user, `denied` for a
   * wrong password or a disabled or password-less user.
   */
  async checkPassword(name: string, password: string): Promise<'allowed' | 'denied' | 'unknown'> {
    const user = await this.ctx.store.getUser(name);
    if (!user) {
      decoyHash ??= hashPassword(newSecret());
      await verifyPassword(await decoyHash, password);
      return 'unknown';
    }
    if (user.disabled || user.passwordHash === null) return 'denied';
    return (await verifyPassword(user.passwordHash, password)) ? 'allowed' : 'denied';
  }

  /** Ends a browser login; returns the user it belonged to. */
  async logout(cookie: string): Promise<string | undefined> {
    const hash = hashSecret(cookie);
    const login = await this.ctx.store.findLogin(hash);
    await this.ctx.store.deleteLogin(hash);
    return login?.user;
  }

  /**
   * Creates an API token for `user`; the secret is returned once and only its hash is kept.
   *
   * @example
   * const { token } = await identities.issueToken('alice', { note: 'ci' });
   */
  async issueToken(user: string, options: TokenOptions = {}): Promise<IssuedToken> {
    const owner = await this.ctx.store.getUser(user);
    if (!owner) throw new UserNotFoundError(user);
    const scopes = this.#grantedScopes(owner, options.scopes ?? ['inherit'], options.requester);
    const token = `dsp_${newSecret()}`;
    const created = new Date();
    const expires = options.expiresInSeconds ? new Date(created.getTime() + options.expiresInSeconds * 1000).toISOString() : null;
    const record = await this.ctx.store.createToken({
      id: `t${newSecret(6).replace(/[-_]/g, 'x')}`,
      user,
      hash: hashSecret(token),
      note: options.note ?? '',
      scopes,
      created: created.toISOString(),
      expiresAt: expires,
    });
    return { record, token };
  }

  /**
   * The scope list a new token is stored with. Unknown scopes: 400 naming them; scopes the owner does not hold:
   * 400 (as JupyterHub); scopes the requesting credential does not hold: 403. A narrower requester's `inherit`
   * becomes its own scopes on the owner, so a token never mints a wider one.
   */
  #grantedScopes(owner: UserRecord, requested: readonly string[], requester: Scopes | undefined): string[] {
    const owned = ownerScopes(owner);
    const { unknown, notHeld } = checkRequestedScopes(owner, requested, owned);
    if (unknown.length > 0) {
      throw new BadRequestError(`scopes: unknown scope${unknown.length > 1 ? 's' : ''}: ${unknown.map((u) => `${u.scope} (${u.problem})`).join(', ')}`, 'scopes');
    }
    if (notHeld.length > 0) {
      throw new BadRequestError(`scopes: not assigning requested scopes ${notHeld.join(', ')}: not held by user ${owner.name}`, 'scopes');
    }
    if (requester === undefined || requester.covers(owned)) return [...requested];
    const excess = checkRequestedScopes(owner, requested, requester).notHeld.filter((s) => s !== 'inherit' && s !== 'all');
    if (excess.length > 0) throw new ForbiddenError(`scopes: the requesting credential does not hold ${excess.join(', ')}`);
    if (!requested.includes('inherit') && !requested.includes('all')) return [...requested];
    return tokenScopes(owner, ['inherit']).intersect(requester).toStrings();
  }
}

function callerOf(user: UserRecord, scopes: Scopes, expiresAtMs: number | undefined): Omit<Caller, 'token'> {
  const servers = scopes.usersFor('access:servers');
  return {
    identity: { user: user.name, admin: user.admin, servers, ...(expiresAtMs === undefined ? {} : { expiresAtMs }) },
    scopes,
    full: scopes.covers(ownerScopes(user)),
  };
}
