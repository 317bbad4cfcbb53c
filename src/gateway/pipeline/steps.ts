// Steps 1–6 of the pipeline, in order: classify the path, find and check the credential, authorize, check the
// origin, find the route, and build the headers sent upstream. Each returns `undefined` to go on or a `Reply`.
import { CLIENT_ADDRESS_HEADER, type Identity } from '../../protocol/gateway.js';
import { USERNAME_PATTERN } from '../../lib/names.js';
import { HubUnavailableError } from '../errors.js';
import { LOGIN_PREFIX, USER_HOST_PREFIX, USER_PREFIX, readCookie, type Exchange, type Reply, type StepResult } from './exchange.js';

export { readCookie };
import { hubLocation, userHostAuthorize } from './hosts.js';

/**
 * Step 1: `/hub[/…]` goes to the hub, `/user/<name>[/…]` to that user's server, `/` redirects to `/hub/`, and
 * anything else is 404.
 *
 * @example
 * classifyPath(ex); // /user/alice/lab: undefined, and ex.user === 'alice'
 * // '/': { status: 302, location: '/hub/' }; /hub/internal/…: 404
 */
export function classifyPath(ex: Exchange): StepResult {
  const url = ex.req.url ?? '';
  if (url.startsWith(USER_PREFIX)) {
    let end = USER_PREFIX.length;
    while (end < url.length) {
      const c = url.charCodeAt(end);
      if (c === 47 /* / */ || c === 63 /* ? */) break;
      end++;
    }
    const user = url.slice(USER_PREFIX.length, end);
    if (!USERNAME_PATTERN.test(user)) return notFound(url);
    ex.user = user;
    return undefined;
  }
  if (url.startsWith('/hub') && (url.length === 4 || url[4] === '/' || url[4] === '?')) {
    // The hub's internal routes (agents, gateway, SSH lookups) are for the pool's own processes, never from outside.
    return isInternalPath(url) ? notFound(url) : undefined;
  }
  if (url === '/' || url.startsWith('/?')) return { status: 302, code: 'redirect', message: 'See /hub/', location: '/hub/' };
  return notFound(url);
}

function isInternalPath(url: string): boolean {
  let path = url.split('?', 1)[0] ?? '';
  if (path.includes('%')) {
    try {
      path = decodeURIComponent(path);
    } catch {
      return true;
    }
  }
  path = path.replace(/\/+/g, '/').toLowerCase();
  return path === '/hub/internal' || path.startsWith('/hub/internal/');
}

function notFound(url: string): Reply {
  const path = url.split('?', 1)[0] ?? '';
  return { status: 404, code: 'not_found', message: `nothing here: ${path.length > 200 ? `${path.slice(0, 200)}…` : path}` };
}

/**
 * Step 2a: finds the credential: `Authorization: token|Bearer <t>` first, else the login cookie.
 *
 * @example
 * findCredential(ex); // undefined with ex.credentialKind 'token' for Authorization: token abc123
 * // with no credential: a redirect to /hub/login for a browser, 401 for others
 */
export function findCredential(ex: Exchange): StepResult {
  const authorization = ex.authorization;
  if (authorization !== undefined) {
    const space = authorization.indexOf(' ');
    const scheme = space > 0 ? authorization.slice(0, space).toLowerCase() : '';
    if (scheme === 'token' || scheme === 'bearer') {
      const token = authorization.slice(space + 1).trim();
      if (token !== '') {
        ex.credentialKind = 'token';
        ex.credential = token;
        return undefined;
      }
    }
  }
  // On a user host only that host's own cookie counts (the hub's never reaches it, by design).
  const cookie = ex.cookie === undefined ? undefined : readCookie(ex.cookie, ex.hostUser === '' ? LOGIN_PREFIX : USER_HOST_PREFIX);
  if (cookie !== undefined && cookie !== '') {
    ex.credentialKind = 'cookie';
    ex.credential = cookie;
    return undefined;
  }
  return unauthenticated(ex);
}

/**
 * Step 2b: turns the credential into an identity: from the cache without waiting, else by asking the hub
 * (a promise). A hub that cannot answer gives 503, never a hang.
 *
 * @example
 * const auth = authenticate(ex); // undefined when known (ex.identity set), a Reply, or a Promise of either
 * if (auth instanceof Promise) auth.then((result) => (result === undefined ? next() : respond(ex, result)));
 */
export function authenticate(ex: Exchange): StepResult | Promise<StepResult> {
  const cached = ex.ctx.cachedIdentity(ex.credentialKind, ex.credential);
  if (cached !== undefined) return identified(ex, cached);
  return ex.ctx.lookup(ex.credentialKind, ex.credential).then(
    (identity) => identified(ex, identity),
    (error: unknown) => {
      if (!(error instanceof HubUnavailableError)) throw error;
      return { status: error.status, code: error.code, message: 'hub unavailable: cannot check your credentials now; try again shortly' };
    },
  );
}

function identified(ex: Exchange, identity: Identity | null): StepResult {
  if (identity === null) return unauthenticated(ex);
  ex.identity = identity;
  return undefined;
}

function unauthenticated(ex: Exchange): Reply {
  if (ex.browserGet) {
    if (ex.hostUser !== '') return { status: 302, code: 'redirect', message: 'Log in through the hub', location: userHostAuthorize(ex) };
    return { status: 302, code: 'redirect', message: 'Log in first', location: `/hub/login?next=${encodeURIComponent(ex.req.url ?? '/')}` };
  }
  return { status: 401, code: 'unauthenticated', message: 'authentication required: log in, or send Authorization: token <token>' };
}

/**
 * Step 3: a user's server only for a credential with `access:servers` on that user (the hub sends whose servers
 * in `identity.servers`; absent, the user themself or an admin); says nothing about whether the server runs.
 *
 * @example
 * authorize(ex); // undefined for alice on /user/alice/; bob (not an admin) there gets { status: 403, code: 'forbidden', … }
 */
export function authorize(ex: Exchange): StepResult {
  const identity = ex.identity as Identity;
  const servers = identity.servers;
  if (servers === undefined ? identity.user === ex.user || identity.admin : servers === '*' || servers.includes(ex.user)) return undefined;
  return { status: 403, code: 'forbidden', message: `${identity.user} may not access /user/${ex.user}/ with this credential (it needs access:servers!user=${ex.user})` };
}

/**
 * Step 4: for cookie-authenticated WebSocket upgrades and state-changing requests, an `Origin` other than this
 * one (scheme, host and port) is refused, and so is a missing one (Jupyter skips its own check for the token the
 * gateway injects, so the gateway must do it).
 *
 * @example
 * checkOrigin(ex); // a cookie POST from Origin: https://evil.example gives { status: 403, code: 'origin_refused', … }
 */
export function checkOrigin(ex: Exchange): StepResult {
  if (ex.credentialKind !== 'cookie') return undefined;
  const method = ex.req.method;
  if (!ex.upgrade && (method === 'GET' || method === 'HEAD' || method === 'OPTIONS')) return undefined;
  const origin = ex.origin;
  if (origin === undefined) {
    return { status: 403, code: 'origin_missing', message: 'the Origin header is missing: a cookie-authenticated request that changes state needs it (or use Authorization: token)' };
  }
  const proto = ex.ctx.trustProxy && ex.forwardedProto !== undefined ? firstValue(ex.forwardedProto) : 'http';
  const own = `${proto}://${ex.ctx.trustProxy && ex.forwardedHost !== undefined ? firstValue(ex.forwardedHost) : ex.host}`;
  if (origin === own || ex.ctx.allowedOrigins.has(origin)) return undefined;
  // Slow path for spellings that differ only in form (case, default port).
  const normal = normalOrigin(origin);
  if (normal !== undefined && normal !== 'null' && (normal === normalOrigin(own) || ex.ctx.allowedOrigins.has(normal))) return undefined;
  return { status: 403, code: 'origin_refused', message: `requests from origin ${origin} are not allowed` };
}

/**
 * Step 5: the user's route; without one, browsers go to the hub (which starts the server) and others get 503.
 *
 * @example
 * findRoute(ex); // undefined with ex.route set while alice's server runs
 * // otherwise a browser is redirected to /hub/user/alice/…, others get 503 server_not_running
 */
export function findRoute(ex: Exchange): StepResult {
  const route = ex.ctx.route(ex.user);
  if (route !== undefined) {
    ex.route = route;
    return undefined;
  }
  if (ex.browserGet) {
    const rest = (ex.req.url ?? '').slice(USER_PREFIX.length + ex.user.length);
    return { status: 302, code: 'redirect', message: 'Starting your server', location: hubLocation(ex, `/hub/user/${ex.user}${rest.startsWith('/') ? rest : `/${rest}`}`) };
  }
  return {
    status: 503,
    code: 'server_not_running',
    message: `${ex.user}'s server is not running; start it with POST /hub/api/users/${ex.user}/server`,
  };
}

/**
 * Step 6: the headers sent upstream. Hop-by-hop headers go; `X-Forwarded-*` are set. For a user's server
 * (`authorization` given) the login cookie is removed and `Authorization` carries the server's token; for the
 * hub both pass unchanged. Path and Host stay as they are.
 *
 * @example
 * upstreamHeaders(ex, route.authorization);
 * // ['Host', 'pool.example', …, 'Authorization', 'token …', 'X-Forwarded-For', '203.0.113.7', …]
 */
export function upstreamHeaders(ex: Exchange, authorization: string | undefined): string[] {
  const raw = ex.req.rawHeaders;
  const out: string[] = [];
  let upgrade: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    const lower = name.toLowerCase();
    switch (lower) {
      case 'connection':
      case 'keep-alive':
      case 'proxy-connection':
      case 'proxy-authorization':
      case 'x-forwarded-for':
      case 'x-forwarded-proto':
      case 'x-forwarded-host':
      case CLIENT_ADDRESS_HEADER:
        continue;
      // Framing is the upstream client's own (undici refuses these), and Node already answered `Expect`.
      case 'transfer-encoding':
      case 'expect':
      case 'te':
        continue;
      case 'upgrade':
        upgrade = value;
        continue;
      case 'authorization':
        if (authorization !== undefined) continue;
        break;
      case 'cookie':
        if (authorization !== undefined) {
          const kept = withoutLoginCookie(value);
          if (kept !== '') out.push(name, kept);
          continue;
        }
        break;
    }
    out.push(name, value);
  }
  if (authorization !== undefined) out.push('Authorization', authorization);
  const remote = ex.req.socket.remoteAddress ?? '';
  const trust = ex.ctx.trustProxy;
  out.push(
    'X-Forwarded-For',
    trust && ex.forwardedFor !== undefined ? `${ex.forwardedFor}, ${remote}` : remote,
    'X-Forwarded-Proto',
    trust && ex.forwardedProto !== undefined ? ex.forwardedProto : 'http',
    'X-Forwarded-Host',
    trust && ex.forwardedHost !== undefined ? ex.forwardedHost : ex.host,
  );
  if (authorization === undefined) out.push(CLIENT_ADDRESS_HEADER, ex.ctx.signClientAddress(clientAddress(ex)));
  if (ex.upgrade && upgrade !== undefined) out.push('Connection', 'Upgrade', 'Upgrade', upgrade);
  return out;
}

/**
 * The client's address: the peer of the connection, or, behind a trusted proxy, the last address that proxy
 * added to `X-Forwarded-For`.
 *
 * @example
 * clientAddress(ex); // '203.0.113.7' from X-Forwarded-For: 198.51.100.1, 203.0.113.7 with trustProxy; else the peer
 */
export function clientAddress(ex: Exchange): string {
  const remote = ex.req.socket.remoteAddress ?? '';
  if (!ex.ctx.trustProxy || ex.forwardedFor === undefined) return remote;
  const last = ex.forwardedFor.slice(ex.forwardedFor.lastIndexOf(',') + 1).trim();
  return last === '' ? remote : last;
}

function firstValue(list: string): string {
  const comma = list.indexOf(',');
  return (comma === -1 ? list : list.slice(0, comma)).trim();
}

function normalOrigin(origin: string): string | undefined {
  try {
    return new URL(origin).origin;
  } catch {
    return undefined;
  }
}

/**
 * A Cookie header without the login cookies, the hub's and a user host's (`''` when nothing else is left).
 *
 * @example
 * withoutLoginCookie('dspool-session=abc; theme=dark'); // 'theme=dark'
 * withoutLoginCookie('dspool-session=abc'); // ''
 */
export function withoutLoginCookie(header: string): string {
  if (!header.includes(LOGIN_PREFIX) && !header.includes(USER_HOST_PREFIX)) return header;
  return header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && !part.startsWith(LOGIN_PREFIX) && !part.startsWith(USER_HOST_PREFIX))
    .join('; ');
}
