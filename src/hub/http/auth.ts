// Authentication step for every hub request, and the checks routes use to authorize.
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { LOGIN_COOKIE, type Identity } from '../../protocol/gateway.js';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import type { Caller } from '../auth/identity.js';
import type { ScopeName } from '../auth/scopes.js';
import { requireSameOrigin } from './forms.js';
import type { HubEnv, HubServices } from './services.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Paths where a token narrower than its owner is accepted (there, each route checks its own scope). */
const SCOPED_PREFIXES = ['/hub/api/', '/hub/metrics'];

/**
 * Reads `Authorization: token|Bearer <t>` or the login cookie and stores who is calling and with which scopes.
 * On the pages (anything outside the API), a token that lacks some of its owner's scopes counts as no credential:
 * pages act with the user's full rights, so they take only a login cookie or an unrestricted token.
 *
 * @example
 * app.use('/hub/*', authenticate(services));
 * // later, in a route: c.get('identity')?.user, or null for an anonymous request
 */
export function authenticate(services: Pick<HubServices, 'identities'>): MiddlewareHandler<HubEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^(?:token|bearer)\s+(\S+)$/i.exec(header);
    let caller: Caller | null = null;
    let viaCookie = false;
    if (match?.[1]) {
      caller = await services.identities.authenticateToken(match[1]);
      if (!caller) throw new UnauthorizedError('the token is invalid, expired or revoked');
      const path = c.req.path;
      if (!caller.full && !SCOPED_PREFIXES.some((prefix) => path.startsWith(prefix) || `${path}/` === prefix)) caller = null;
    } else {
      const cookie = getCookie(c, LOGIN_COOKIE);
      if (cookie) {
        caller = await services.identities.authenticateCookie(cookie);
        viaCookie = caller !== null;
      }
    }
    // Scheme, host and port must all match; a cookie request without Origin (or Referer) is refused as such.
    if (viaCookie && !SAFE_METHODS.has(c.req.method)) requireSameOrigin(c);
    c.set('caller', caller);
    c.set('identity', caller?.identity ?? null);
    c.set('viaCookie', viaCookie);
    c.set('token', match?.[1]);
    await next();
  };
}

/**
 * The caller, or `UnauthorizedError` (403, as JupyterHub).
 *
 * @example
 * const caller = requireCaller(c); // throws UnauthorizedError when the request carries no valid credential
 * caller.scopes.allows('servers', 'alice');
 */
export function requireCaller(c: Context<HubEnv>): Caller {
  const caller = c.get('caller');
  if (!caller) throw new UnauthorizedError();
  return caller;
}

/**
 * The caller, or `UnauthorizedError` (403, as JupyterHub).
 *
 * @example
 * const { user, admin } = requireIdentity(c); // throws UnauthorizedError when the request carries no valid credential
 */
export function requireIdentity(c: Context<HubEnv>): Identity {
  return requireCaller(c).identity;
}

/**
 * The caller when its credential holds one of `scopes` — for `user`'s resources when a user is named (a filtered
 * scope such as `servers!user=alice` counts), else unfiltered — or 403 naming what is missing.
 *
 * @example
 * requireScope(c, 'servers', 'alice');
 * requireScope(c, ['read:users', 'read:servers'], name);
 */
export function requireScope(c: Context<HubEnv>, scopes: ScopeName | readonly ScopeName[], user?: string): Caller {
  const caller = requireCaller(c);
  const anyOf: readonly ScopeName[] = typeof scopes === 'string' ? [scopes] : scopes;
  if (anyOf.some((scope) => caller.scopes.allows(scope, user))) return caller;
  const need = anyOf.map((scope) => (user === undefined ? scope : `${scope}!user=${user}`)).join(' or ');
  throw new ForbiddenError(`action is not authorized with this credential's scopes; it needs ${need}`);
}

/**
 * The caller when it is an admin whose credential holds all of the admin's scopes, or 403. For routes that have no
 * scope of their own; prefer {@link requireScope}.
 *
 * @example
 * requireAdmin(c); // the admin's Identity; ForbiddenError for a non-admin or a scope-limited token
 */
export function requireAdmin(c: Context<HubEnv>): Identity {
  const caller = requireCaller(c);
  if (!caller.identity.admin || !caller.full) throw new ForbiddenError('this needs an admin (with an unrestricted credential)');
  return caller.identity;
}

/**
 * The caller when it is `name` or an admin, with an unrestricted credential, or 403. For routes that have no scope
 * of their own; prefer {@link requireScope}.
 *
 * @example
 * requireSelfOrAdmin(c, c.req.param('name')); // alice may act on 'alice', an admin on anyone; else ForbiddenError
 */
export function requireSelfOrAdmin(c: Context<HubEnv>, name: string): Identity {
  const caller = requireCaller(c);
  if (!caller.full) throw new ForbiddenError('this needs an unrestricted credential (a login, or a token with all of your scopes)');
  if (caller.identity.user !== name && !caller.identity.admin) throw new ForbiddenError(`you may only act on your own account, not "${name}"`);
  return caller.identity;
}
