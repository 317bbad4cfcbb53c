// Who is calling: resolves API tokens and login cookies, logs users in and out, issues tokens.
import type { Identity } from '../../protocol/gateway.js';
import type { Store, TokenRecord } from '../store/types.js';
import { hashPassword, hashSecret, newSecret, sameSecret, verifyPassword } from './credentials.js';

/** Name of the built-in identity behind the admin token the hub writes for the CLI; not a valid username. */
export const SERVICE_IDENTITY = '*dspool-cli';

/** What the identity service needs. */
export interface IdentityContext {
  readonly store: Store;
  /** The admin token handed to the CLI through dataDir (not stored in the database). */
  readonly adminToken: string;
  readonly cookieMaxAgeMs: number;
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
}

// A fixed argon2 hash checked when the user does not exist, so a wrong name costs as long as a wrong password.
let decoyHash: Promise<string> | undefined;

export class IdentityService {
  constructor(private readonly ctx: IdentityContext) {}

  /**
   * Resolves an API token (`Authorization: token …`); expired tokens and disabled users resolve to null.
   *
   * @example
   * const who = await identities.resolveToken(token); // { user: 'alice', admin: false } | null
   */
  async resolveToken(token: string): Promise<Identity | null> {
    if (!token) return null;
    if (sameSecret(token, this.ctx.adminToken)) return { user: SERVICE_IDENTITY, admin: true };
    const record = await this.ctx.store.findTokenByHash(hashSecret(token));
    if (!record) return null;
    const now = new Date();
    if (record.expiresAt !== null && new Date(record.expiresAt) <= now) return null;
    const user = await this.ctx.store.getUser(record.user);
    if (!user || user.disabled) return null;
    void this.ctx.store.touchToken(record.id, now.toISOString());
    return { user: user.name, admin: user.admin };
  }

  /** The stored record of a token (for `GET /hub/api/user`'s scopes and token id), if it is one. */
  findToken(token: string): Promise<TokenRecord | undefined> {
    return this.ctx.store.findTokenByHash(hashSecret(token));
  }

  /** Resolves a browser login cookie. */
  async resolveCookie(cookie: string): Promise<Identity | null> {
    if (!cookie) return null;
    const login = await this.ctx.store.findLogin(hashSecret(cookie));
    if (!login || new Date(login.expiresAt) <= new Date()) return null;
    const user = await this.ctx.store.getUser(login.user);
    if (!user || user.disabled) return null;
    return { user: user.name, admin: user.admin };
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
    const token = `dsp_${newSecret()}`;
    const created = new Date();
    const expires = options.expiresInSeconds ? new Date(created.getTime() + options.expiresInSeconds * 1000).toISOString() : null;
    const record = await this.ctx.store.createToken({
      id: `t${newSecret(6).replace(/[-_]/g, 'x')}`,
      user,
      hash: hashSecret(token),
      note: options.note ?? '',
      scopes: [...(options.scopes ?? ['inherit'])],
      created: created.toISOString(),
      expiresAt: expires,
    });
    return { record, token };
  }
}
