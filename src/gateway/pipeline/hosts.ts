// The steps that keep a user's server off the hub's origin. With `userHost` ("{user}.pool.example", as
// JupyterHub's subdomain_host) each server is served on its own host, which never holds the hub's login cookie:
// a browser gets a per-host cookie through a redirect handshake with the hub. Without it, an admin's browser is
// sent to a warning page before it opens another user's server.
import { ACK_COOKIE, USER_HOST_CALLBACK_PATH, USER_HOST_AUTHORIZE_PATH, USER_HOST_COOKIE, adminAck, type Identity } from '../../protocol/gateway.js';
import { USERNAME_PATTERN } from '../../lib/names.js';
import { HubUnavailableError } from '../errors.js';
import { USER_PREFIX, readCookie, type Exchange, type StepResult } from './exchange.js';

/** Where `userHost` puts things: `{user}.<hubHostname>` for servers, `<hubHostname>` for the hub. */
export interface UserHostLayout {
  /** e.g. `pool.example`. */
  readonly hubHostname: string;
  /** e.g. `.pool.example`: what a user host's name ends with. */
  readonly suffix: string;
}

/**
 * The layout of a `userHost` template, which must be `{user}.<domain>`.
 *
 * @example
 * userHostLayout('{user}.pool.example'); // { hubHostname: 'pool.example', suffix: '.pool.example' }
 */
export function userHostLayout(template: string): UserHostLayout {
  if (!template.startsWith('{user}.') || template.length <= 7) throw new TypeError(`userHost must be "{user}.<domain>", not ${JSON.stringify(template)}`);
  const hubHostname = template.slice(7).toLowerCase();
  return { hubHostname, suffix: `.${hubHostname}` };
}

function scheme(ex: Exchange): string {
  if (!ex.ctx.trustProxy || ex.forwardedProto === undefined) return 'http';
  return ex.forwardedProto.split(',', 1)[0]?.trim() || 'http';
}

/** The Host header split into a lower-case name and the `:port` part (or `''`). */
function splitHost(host: string): { name: string; port: string } {
  const match = /^(\[[^\]]*\]|[^:]*)(:\d+)?$/.exec(host.trim());
  return { name: (match?.[1] ?? '').toLowerCase(), port: match?.[2] ?? '' };
}

/**
 * An absolute URL on the hub's host (the same scheme and port as this request).
 *
 * @example
 * hubLocation(ex, '/hub/login'); // 'http://pool.example:8000/hub/login' on alice.pool.example:8000; '/hub/login' on the hub's host
 */
export function hubLocation(ex: Exchange, path: string): string {
  const layout = ex.ctx.userHost;
  if (layout === undefined || ex.hostUser === '') return path;
  return `${scheme(ex)}://${layout.hubHostname}${splitHost(ex.host).port}${path}`;
}

/** An absolute URL on `user`'s host (the same scheme and port as this request). */
function userLocation(ex: Exchange, layout: UserHostLayout, user: string, path: string): string {
  return `${scheme(ex)}://${user}${layout.suffix}${splitHost(ex.host).port}${path}`;
}

/**
 * Step 0b, with `userHost`: a request to `<user>.<domain>` may only reach that user's server (and the handshake
 * callback); on any other host a browser asking for `/user/<name>/…` is sent to that user's host, others get 404.
 *
 * @example
 * const reply = classifyHost(ex); // on alice.pool.example, /user/bob/ gives { status: 404, code: 'not_found', … }
 * if (reply !== undefined) return respond(ex, reply);
 */
export function classifyHost(ex: Exchange): StepResult {
  const layout = ex.ctx.userHost;
  if (layout === undefined) return undefined;
  const url = ex.req.url ?? '';
  const { name } = splitHost(ex.host);
  const label = name.endsWith(layout.suffix) ? name.slice(0, -layout.suffix.length) : '';
  if (label !== '' && USERNAME_PATTERN.test(label)) {
    ex.hostUser = label;
    const own = `${USER_PREFIX}${label}`;
    if (url === own || url.startsWith(`${own}/`) || url.startsWith(`${own}?`)) return undefined;
    if (url.startsWith(`${USER_HOST_CALLBACK_PATH}?`)) return undefined;
    if (url === '/' || url.startsWith('/?')) return { status: 302, code: 'redirect', message: 'See your server', location: `${own}/` };
    return { status: 404, code: 'not_found', message: `${name} serves only ${own}/` };
  }
  if (!url.startsWith(USER_PREFIX)) return undefined;
  const user = url.slice(USER_PREFIX.length).split(/[/?]/, 1)[0] ?? '';
  if (!USERNAME_PATTERN.test(user)) return undefined;
  const there = userLocation(ex, layout, user, url);
  if (ex.browserGet) return { status: 302, code: 'redirect', message: `${user}'s server is on its own host`, location: there };
  return { status: 404, code: 'not_found', message: `${user}'s server is served at ${there}` };
}

/**
 * Where a browser without a credential goes on a user host: the hub, which sends it back with a code.
 *
 * @example
 * userHostAuthorize(ex);
 * // 'http://pool.example:8000/hub/user-host/authorize?user=alice&next=%2Fuser%2Falice%2Flab' for /user/alice/lab on alice.pool.example:8000
 */
export function userHostAuthorize(ex: Exchange): string {
  const query = new URLSearchParams({ user: ex.hostUser, next: ex.req.url ?? '/' });
  return hubLocation(ex, `${USER_HOST_AUTHORIZE_PATH}?${query.toString()}`);
}

/**
 * The handshake's last leg, on a user host: trades the one-time code for this host's own login cookie (asking
 * the hub) and sends the browser on to `next` (a path of this user's server).
 *
 * @example
 * const result = await userHostCallback(ex); // GET /hub/user-host/callback?code=…&next=/user/alice/lab
 * // { status: 302, location: '/user/alice/lab', setCookie: 'dspool-host-session=…; Path=/; HttpOnly; SameSite=Lax' }
 */
export async function userHostCallback(ex: Exchange): Promise<StepResult> {
  const query = new URLSearchParams((ex.req.url ?? '').split('?')[1] ?? '');
  const code = query.get('code') ?? '';
  const own = `${USER_PREFIX}${ex.hostUser}/`;
  const asked = query.get('next') ?? own;
  const next = asked.startsWith(own) && !/[\\\u0000-\u001f\s]/u.test(asked) ? asked : own;
  if (ex.req.method !== 'GET' || code === '') return { status: 400, code: 'bad_request', message: 'the login handshake needs GET with a code' };
  let cookie: string | undefined;
  try {
    cookie = await ex.ctx.redeemUserHostCode(code, ex.hostUser);
  } catch (error) {
    if (!(error instanceof HubUnavailableError)) throw error;
    return { status: error.status, code: error.code, message: 'hub unavailable: cannot finish logging you in; try again shortly' };
  }
  if (cookie === undefined) return { status: 403, code: 'forbidden', message: 'the login code is invalid or expired; open the server again from the hub' };
  const secure = scheme(ex) === 'https' ? '; Secure' : '';
  return {
    status: 302,
    code: 'redirect',
    message: 'Logged in',
    location: next,
    setCookie: `${USER_HOST_COOKIE}=${cookie}; Path=/; HttpOnly; SameSite=Lax${secure}`,
  };
}

/**
 * Step 3b, without `userHost`: an admin using the login cookie reaches another user's server only after the
 * warning page (the hub then sets {@link ACK_COOKIE} for that server); browsers are sent there, others get 403.
 *
 * @example
 * confirmAdmin(ex); // an admin's browser GET of /user/bob/ with the login cookie, not yet confirmed:
 * // { status: 302, code: 'redirect', location: '/hub/confirm/bob?next=%2Fuser%2Fbob%2F', … }
 */
export function confirmAdmin(ex: Exchange): StepResult {
  const identity = ex.identity as Identity;
  if (ex.ctx.userHost !== undefined || ex.credentialKind !== 'cookie' || identity.user === ex.user) return undefined;
  const given = ex.cookie === undefined ? undefined : readCookie(ex.cookie, `${ACK_COOKIE}=`);
  if (given !== undefined && given === adminAck(ex.ctx.secret, ex.user, ex.credential)) return undefined;
  if (ex.browserGet) {
    const next = encodeURIComponent(ex.req.url ?? `${USER_PREFIX}${ex.user}/`);
    return { status: 302, code: 'redirect', message: 'Read the warning first', location: `/hub/confirm/${ex.user}?next=${next}` };
  }
  return {
    status: 403,
    code: 'confirmation_required',
    message: `open /hub/confirm/${ex.user} in the browser first: ${ex.user}'s server runs on the hub's origin (no gateway.userHost)`,
  };
}
