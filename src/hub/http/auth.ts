// Authentication step for every hub request, and the checks routes use to authorize.
import type { Context, MiddlewareHandler } from 'hono';
import { getCookie } from 'hono/cookie';
import { LOGIN_COOKIE, type Identity } from '../../protocol/gateway.js';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import type { HubEnv, HubServices } from './services.js';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Reads `Authorization: token|Bearer <t>` or the login cookie and stores who is calling. */
export function authenticate(services: Pick<HubServices, 'identities'>): MiddlewareHandler<HubEnv> {
  return async (c, next) => {
    const header = c.req.header('authorization') ?? '';
    const match = /^(?:token|bearer)\s+(\S+)$/i.exec(header);
    let identity: Identity | null = null;
    let viaCookie = false;
    if (match?.[1]) {
      identity = await services.identities.resolveToken(match[1]);
      if (!identity) throw new UnauthorizedError('the token is invalid, expired or revoked');
    } else {
      const cookie = getCookie(c, LOGIN_COOKIE);
      if (cookie) {
        identity = await services.identities.resolveCookie(cookie);
        viaCookie = identity !== null;
      }
    }
    if (viaCookie && !SAFE_METHODS.has(c.req.method)) {
      const origin = requestOrigin(c);
      if (origin === undefined) throw new ForbiddenError('request refused: it has no Origin (or Referer) header, which a request made with the login cookie needs');
      if (!sameOrigin(c, origin)) throw new ForbiddenError('cross-origin request refused: the Origin does not match this site');
    }
    c.set('identity', identity);
    c.set('viaCookie', viaCookie);
    c.set('token', match?.[1]);
    await next();
  };
}

/** The caller, or `UnauthorizedError` (403, as JupyterHub). */
export function requireIdentity(c: Context<HubEnv>): Identity {
  const identity = c.get('identity');
  if (!identity) throw new UnauthorizedError();
  return identity;
}

/** The caller when it is an admin, or 403. */
export function requireAdmin(c: Context<HubEnv>): Identity {
  const identity = requireIdentity(c);
  if (!identity.admin) throw new ForbiddenError('this needs an admin');
  return identity;
}

/** The caller when it is `name` or an admin, or 403. */
export function requireSelfOrAdmin(c: Context<HubEnv>, name: string): Identity {
  const identity = requireIdentity(c);
  if (identity.user !== name && !identity.admin) throw new ForbiddenError(`you may only act on your own account, not "${name}"`);
  return identity;
}

/** The request's Origin, else its Referer's origin; `undefined` when it has neither. */
function requestOrigin(c: Context<HubEnv>): string | undefined {
  return c.req.header('origin') || refererOrigin(c.req.header('referer')) || undefined;
}

function sameOrigin(c: Context<HubEnv>, origin: string): boolean {
  const host = c.req.header('x-forwarded-host') ?? c.req.header('host');
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

function refererOrigin(referer: string | undefined): string | undefined {
  if (!referer) return undefined;
  try {
    return new URL(referer).origin;
  } catch {
    return undefined;
  }
}
