// What the hub's HTML forms need to be safe across sites: the request's own origin and the Origin check (scheme,
// host and port), CSRF tokens bound to the browser's cookies, `next` redirects kept to this site, and the client
// address the gateway vouches for.
import { createHmac } from 'node:crypto';
import type { Context } from 'hono';
import { getCookie, setCookie } from 'hono/cookie';
import { CLIENT_ADDRESS_HEADER, LOGIN_COOKIE, verifyClientAddress } from '../../protocol/gateway.js';
import { newSecret } from '../auth/credentials.js';
import { sameSecret } from '../../lib/secret.js';
import { ForbiddenError } from '../errors.js';
import type { HubEnv } from './services.js';

/** The cookie a CSRF token is bound to before login (after login, the login cookie is). */
export const CSRF_COOKIE = 'dspool-csrf';
/** The form field carrying the CSRF token (JupyterHub's name). */
export const CSRF_FIELD = '_xsrf';
/** Where `next` goes when it is missing or refused. */
const DEFAULT_NEXT = '/hub/home';
/** A base no real request has, to parse `next` against. */
const PROBE_ORIGIN = 'http://dspool.invalid';

/**
 * `next` when it is a path on this site after WHATWG URL parsing, else `/hub/home`. Refused: anything that parses
 * to another origin (`//evil`, `/\evil`, `/%09/evil` once decoded), control characters and backslashes, and any
 * spelling whose normal form would start with `//` (`/.//evil`).
 *
 * @example
 * safeNext('/user/alice/tree?x=1'); // '/user/alice/tree?x=1'
 * safeNext('/\tevil.example');     // '/hub/home'
 */
export function safeNext(next: string | undefined): string {
  if (next === undefined || !next.startsWith('/') || /[\\\u0000-\u001f\u007f-\u009f\s]/u.test(next)) return DEFAULT_NEXT;
  let url: URL;
  try {
    url = new URL(next, PROBE_ORIGIN);
  } catch {
    return DEFAULT_NEXT;
  }
  if (url.origin !== PROBE_ORIGIN) return DEFAULT_NEXT;
  const path = `${url.pathname}${url.search}${url.hash}`;
  return path.startsWith('/') && !path.startsWith('//') ? path : DEFAULT_NEXT;
}

/**
 * This request's own origin as the browser sees it: the gateway's `X-Forwarded-Proto/-Host`, else `http://<Host>`.
 *
 * @example
 * ownOrigin(c); // 'https://pool.example' behind the gateway (X-Forwarded-Proto: https, X-Forwarded-Host: pool.example)
 */
export function ownOrigin(c: Context<HubEnv>): string | undefined {
  const proto = c.req.header('x-forwarded-proto')?.split(',')[0]?.trim() ?? 'http';
  const host = c.req.header('x-forwarded-host')?.split(',')[0]?.trim() ?? c.req.header('host');
  if (host === undefined) return undefined;
  return normalOrigin(`${proto}://${host}`);
}

/**
 * `scheme://host[:port]` in normal form (lower case, no default port), or `undefined` when it is not one.
 *
 * @example
 * normalOrigin('HTTPS://Pool.Example:443/hub/login'); // 'https://pool.example'
 * normalOrigin('not a url'); // undefined
 */
export function normalOrigin(value: string): string | undefined {
  try {
    const origin = new URL(value).origin;
    return origin === 'null' ? undefined : origin;
  } catch {
    return undefined;
  }
}

/**
 * Why a state-changing browser request is refused as cross-site, or `undefined` when its `Origin` (else its
 * `Referer`'s origin) is this site: scheme, host and port all equal.
 *
 * @example
 * originProblem(c); // undefined for Origin: https://pool.example on a request to https://pool.example
 * // 'the Origin https://evil.example is not this site (https://pool.example)' otherwise
 */
export function originProblem(c: Context<HubEnv>): string | undefined {
  const given = c.req.header('origin') ?? refererOrigin(c.req.header('referer'));
  if (given === undefined) return 'the Origin header is missing (a browser sends it; other clients use Authorization: token)';
  const own = ownOrigin(c);
  if (own === undefined || normalOrigin(given) !== own) return `the Origin ${given.slice(0, 200)} is not this site (${own ?? 'unknown'})`;
  return undefined;
}

/**
 * Throws 403 unless {@link originProblem} finds nothing.
 *
 * @example
 * if (viaCookie && !SAFE_METHODS.has(c.req.method)) requireSameOrigin(c); // ForbiddenError for a cross-site POST
 */
export function requireSameOrigin(c: Context<HubEnv>): void {
  const problem = originProblem(c);
  if (problem !== undefined) throw new ForbiddenError(`cross-origin request refused: ${problem}`);
}

function refererOrigin(referer: string | undefined): string | undefined {
  return referer === undefined ? undefined : normalOrigin(referer);
}

/** What a token is bound to: the login cookie when there is one, else the pre-login CSRF cookie. */
function binding(c: Context<HubEnv>): string | undefined {
  return getCookie(c, LOGIN_COOKIE) ?? getCookie(c, CSRF_COOKIE);
}

function tokenFor(secret: string, bound: string): string {
  return createHmac('sha256', secret).update(`csrf:${bound}`).digest('base64url');
}

/**
 * The CSRF token for the forms of this response; sets the pre-login cookie first when the browser has neither
 * it nor a login cookie.
 *
 * @example
 * `<input type="hidden" name="${CSRF_FIELD}" value="${csrfToken(c, secret)}">`
 */
export function csrfToken(c: Context<HubEnv>, secret: string): string {
  let bound = binding(c);
  if (bound === undefined) {
    bound = newSecret();
    setCookie(c, CSRF_COOKIE, bound, { path: '/hub/', httpOnly: true, sameSite: 'Lax', secure: c.req.header('x-forwarded-proto') === 'https' });
  }
  return tokenFor(secret, bound);
}

/**
 * The hidden form field carrying {@link csrfToken}.
 *
 * @example
 * c.html(loginPage(next, csrfInput(c, s.gatewaySecret))); // the form carries <input type="hidden" name="_xsrf" value="…">
 */
export function csrfInput(c: Context<HubEnv>, secret: string): string {
  return `<input type="hidden" name="${CSRF_FIELD}" value="${csrfToken(c, secret)}">`;
}

/**
 * Whether a posted form carries the right CSRF token for this browser's cookies.
 *
 * @example
 * if (!(await csrfValid(c, s.gatewaySecret))) return c.text('the form is missing its CSRF token, or it has expired', 403);
 */
export async function csrfValid(c: Context<HubEnv>, secret: string): Promise<boolean> {
  const bound = binding(c);
  if (bound === undefined) return false;
  const form = await c.req.parseBody();
  const given = form[CSRF_FIELD];
  if (typeof given !== 'string') return false;
  return sameSecret(given, tokenFor(secret, bound));
}

/**
 * The client's address: the one the gateway signed into `CLIENT_ADDRESS_HEADER`, else the connection's peer
 * (a request straight to the hub's port).
 *
 * @example
 * await s.logins.login('web', username, password, clientAddress(c, s.gatewaySecret)); // e.g. '203.0.113.7', as the gateway saw it
 */
export function clientAddress(c: Context<HubEnv>, secret: string): string {
  const vouched = verifyClientAddress(secret, c.req.header(CLIENT_ADDRESS_HEADER));
  if (vouched !== undefined) return vouched;
  const env = c.env as { incoming?: { socket?: { remoteAddress?: string } } } | undefined;
  return env?.incoming?.socket?.remoteAddress ?? 'unknown';
}
