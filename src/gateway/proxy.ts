// The gateway's request pipeline: an ordered list of small named steps (classify, authenticate, authorize,
// check origin, find route, rewrite headers, forward), shared by plain HTTP requests and WebSocket upgrades.
import http, { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { LOGIN_COOKIE, type Identity } from '../protocol/gateway.js';
import { USERNAME_PATTERN } from '../lib/names.js';
import type { Logger } from '../lib/log.js';
import type { CredentialKind } from './auth-cache.js';
import { HubUnavailableError, GATEWAY_ERROR_STATUS, type GatewayErrorCode } from './errors.js';
import type { ResolvedRoute } from './hub-link.js';
import { escapeHtml } from '../lib/html.js';
import type { Dispatcher } from 'undici';
import { downstreamHeaders, type Backend } from './upstream.js';

export type { Backend } from './upstream.js';


/** What the pipeline needs from its surroundings (the gateway passes itself through this narrow view). */
export interface ProxyContext {
  readonly hub: Backend;
  readonly allowedOrigins: ReadonlySet<string>;
  readonly trustProxy: boolean;
  /** Pooled keep-alive connections for plain requests (see upstream.ts). */
  readonly upstream: Dispatcher;
  readonly log: Logger;
  route(user: string): ResolvedRoute | undefined;
  cachedIdentity(kind: CredentialKind, value: string): Identity | null | undefined;
  lookup(kind: CredentialKind, value: string): Promise<Identity | null>;
  /** Called with both sockets of a WebSocket once it is piped, so `close()` can end it. */
  trackUpgrade(client: Duplex, backend: Socket): void;
  /** Requests and upgrades seen, and those answered with a 5xx by the gateway or failed upstream (for metrics). */
  readonly counters: { requests: number; errors: number };
}

/** A response decided by a step instead of forwarding: an error or a redirect. */
export interface Reply {
  readonly status: number;
  readonly code: GatewayErrorCode | 'redirect';
  readonly message: string;
  readonly location?: string;
}

const LOGIN_PREFIX = `${LOGIN_COOKIE}=`;
const USER_PREFIX = '/user/';

/** One request or WebSocket upgrade travelling through the pipeline; fields are filled in step by step. */
export class Exchange {
  /** Host header (or `''`). */
  host = '';
  accept = '';
  origin: string | undefined = undefined;
  authorization: string | undefined = undefined;
  cookie: string | undefined = undefined;
  forwardedFor: string | undefined = undefined;
  forwardedProto: string | undefined = undefined;
  forwardedHost: string | undefined = undefined;
  /** The user whose server is addressed (`/user/<user>/…`); `''` for hub paths. */
  user = '';
  credentialKind: CredentialKind = 'token';
  credential = '';
  identity: Identity | undefined = undefined;
  route: ResolvedRoute | undefined = undefined;

  constructor(
    readonly ctx: ProxyContext,
    readonly req: IncomingMessage,
    /** The response, for plain HTTP requests. */
    readonly res: ServerResponse | undefined,
    /** The client socket and the bytes read past the headers, for WebSocket upgrades. */
    readonly socket: Duplex | undefined,
    readonly head: Buffer | undefined,
  ) {}

  get upgrade(): boolean {
    return this.socket !== undefined;
  }

  /** The client went away (nothing more can be answered). */
  get gone(): boolean {
    return this.socket !== undefined ? this.socket.destroyed : this.req.socket.destroyed;
  }

  /** A browser navigating (GET asking for HTML): it gets redirects and HTML pages instead of JSON. */
  get browserGet(): boolean {
    return this.req.method === 'GET' && this.accept.includes('text/html');
  }
}

/** Result of a step: `undefined` to go on, a `Reply` to stop there. */
type StepResult = Reply | undefined;

// ---------------------------------------------------------------------------------------------------------------
// Entry points

/**
 * Runs the pipeline for a plain HTTP request.
 *
 * @example
 * server.on('request', (req, res) => handleRequest(ctx, req, res));
 */
export function handleRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  run(new Exchange(ctx, req, res, undefined, undefined));
}

/**
 * Runs the pipeline for a WebSocket upgrade.
 *
 * @example
 * server.on('upgrade', (req, socket, head) => handleUpgrade(ctx, req, socket, head));
 */
export function handleUpgrade(ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', ignoreError);
  if ('setNoDelay' in socket) (socket as Socket).setNoDelay(true);
  run(new Exchange(ctx, req, undefined, socket, head));
}

function run(ex: Exchange): void {
  ex.ctx.counters.requests++;
  readHeaders(ex);
  const reply = classifyPath(ex);
  if (reply !== undefined) return respond(ex, reply);
  if (ex.user === '') return forward(ex, ex.ctx.hub, upstreamHeaders(ex, undefined), 0);
  const missing = findCredential(ex);
  if (missing !== undefined) return respond(ex, missing);
  const auth = authenticate(ex);
  if (auth === undefined) return afterAuthentication(ex);
  if (!(auth instanceof Promise)) return respond(ex, auth);
  auth.then(
    (result) => {
      if (ex.gone) return;
      if (result !== undefined) respond(ex, result);
      else afterAuthentication(ex);
    },
    (error: unknown) => {
      ex.ctx.log.error({ err: error }, 'auth step failed');
      if (!ex.gone) respond(ex, { status: 500, code: 'invalid_state', message: 'internal error' });
    },
  );
}

/** The steps after authentication, in order; each may stop the request with a reply. */
const STEPS_AFTER_AUTH: readonly ((ex: Exchange) => StepResult)[] = [authorize, checkOrigin, findRoute];

function afterAuthentication(ex: Exchange): void {
  for (const step of STEPS_AFTER_AUTH) {
    const reply = step(ex);
    if (reply !== undefined) return respond(ex, reply);
  }
  const route = ex.route as ResolvedRoute;
  forward(ex, route, upstreamHeaders(ex, route.authorization), 0);
}

// ---------------------------------------------------------------------------------------------------------------
// Steps

/** Step 0: picks the headers the pipeline reads out of `rawHeaders` in one pass (no `req.headers` object). */
export function readHeaders(ex: Exchange): void {
  const raw = ex.req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    const value = raw[i + 1] as string;
    switch (name.length) {
      case 4:
        if (name.toLowerCase() === 'host') ex.host = value;
        break;
      case 6:
        switch (name.toLowerCase()) {
          case 'accept':
            ex.accept = value;
            break;
          case 'origin':
            ex.origin = value;
            break;
          case 'cookie':
            ex.cookie = ex.cookie === undefined ? value : `${ex.cookie}; ${value}`;
            break;
        }
        break;
      case 13:
        if (name.toLowerCase() === 'authorization') ex.authorization = value;
        break;
      case 15:
        if (name.toLowerCase() === 'x-forwarded-for') ex.forwardedFor = value;
        break;
      case 16:
        if (name.toLowerCase() === 'x-forwarded-host') ex.forwardedHost = value;
        break;
      case 17:
        if (name.toLowerCase() === 'x-forwarded-proto') ex.forwardedProto = value;
        break;
    }
  }
}

/**
 * Step 1: `/hub[/…]` goes to the hub, `/user/<name>[/…]` to that user's server, `/` redirects to `/hub/`, and
 * anything else is 404.
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

/** Step 2a: finds the credential: `Authorization: token|Bearer <t>` first, else the login cookie. */
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
  const cookie = ex.cookie === undefined ? undefined : readCookie(ex.cookie, LOGIN_PREFIX);
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
    return { status: 302, code: 'redirect', message: 'Log in first', location: `/hub/login?next=${encodeURIComponent(ex.req.url ?? '/')}` };
  }
  return { status: 401, code: 'unauthenticated', message: 'authentication required: log in, or send Authorization: token <token>' };
}

/** Step 3: only the user themself or an admin may reach a user's server; says nothing about whether it runs. */
export function authorize(ex: Exchange): StepResult {
  const identity = ex.identity as Identity;
  if (identity.user === ex.user || identity.admin) return undefined;
  return { status: 403, code: 'forbidden', message: `${identity.user} may not access /user/${ex.user}/` };
}

/**
 * Step 4: for cookie-authenticated WebSocket upgrades and state-changing requests, a foreign `Origin` is refused
 * (Jupyter skips its own check for the token the gateway injects, so the gateway must do it).
 */
export function checkOrigin(ex: Exchange): StepResult {
  if (ex.credentialKind !== 'cookie' || ex.origin === undefined) return undefined;
  const method = ex.req.method;
  if (!ex.upgrade && (method === 'GET' || method === 'HEAD' || method === 'OPTIONS')) return undefined;
  const origin = ex.origin;
  const proto = ex.ctx.trustProxy && ex.forwardedProto !== undefined ? firstValue(ex.forwardedProto) : 'http';
  const own = `${proto}://${ex.ctx.trustProxy && ex.forwardedHost !== undefined ? firstValue(ex.forwardedHost) : ex.host}`;
  if (origin === own || ex.ctx.allowedOrigins.has(origin)) return undefined;
  // Slow path for spellings that differ only in form (case, default port).
  const normal = normalOrigin(origin);
  if (normal !== undefined && normal !== 'null' && (normal === normalOrigin(own) || ex.ctx.allowedOrigins.has(normal))) return undefined;
  return { status: 403, code: 'origin_refused', message: `requests from origin ${origin} are not allowed` };
}

/** Step 5: the user's route; without one, browsers go to the hub (which starts the server) and others get 503. */
export function findRoute(ex: Exchange): StepResult {
  const route = ex.ctx.route(ex.user);
  if (route !== undefined) {
    ex.route = route;
    return undefined;
  }
  if (ex.browserGet) {
    const rest = (ex.req.url ?? '').slice(USER_PREFIX.length + ex.user.length);
    return { status: 302, code: 'redirect', message: 'Starting your server', location: `/hub/user/${ex.user}${rest.startsWith('/') ? rest : `/${rest}`}` };
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
  if (ex.upgrade && upgrade !== undefined) out.push('Connection', 'Upgrade', 'Upgrade', upgrade);
  return out;
}

/** Step 7: sends the request upstream and streams the answer back (or, for an upgrade, pipes the sockets). */
export function forward(ex: Exchange, backend: Backend, headers: string[], attempt: number): void {
  if (ex.upgrade) return forwardUpgrade(ex, backend, headers);
  const req = ex.req;
  const res = ex.res as ServerResponse;
  const withBody = hasBody(req);
  let controller: Dispatcher.DispatchController | undefined;
  let answered = false;
  // The client went away before the answer was complete: stop the backend request too.
  const onClose = (): void => {
    if (!res.writableFinished) controller?.abort(new Error('client closed the connection'));
  };
  res.on('close', onClose);
  const handler: Dispatcher.DispatchHandler = {
    onRequestStart(c) {
      controller = c;
      if (res.destroyed) c.abort(new Error('client closed the connection'));
    },
    onResponseStart(_c, status, answerHeaders, statusMessage) {
      if (status < 200) return;
      answered = true;
      res.writeHead(status, statusMessage, downstreamHeaders(answerHeaders));
    },
    onResponseData(c, chunk) {
      if (!res.write(chunk)) {
        c.pause();
        res.once('drain', () => c.resume());
      }
    },
    onResponseEnd() {
      res.off('close', onClose);
      res.end();
    },
    onResponseError(_c, error) {
      res.off('close', onClose);
      if (res.destroyed && !res.writableFinished) return;
      // A kept-alive connection the backend had just closed: retry a safe request once when nothing came back.
      if (attempt === 0 && !answered && !withBody && SAFE_METHODS.has(req.method ?? '') && isStaleConnection(error)) {
        forward(ex, backend, headers, 1);
        return;
      }
      backendFailed(ex, error as NodeJS.ErrnoException, answered);
    },
  };
  try {
    ex.ctx.upstream.dispatch(
      { origin: backend.origin, path: req.url ?? '/', method: (req.method ?? 'GET') as Dispatcher.HttpMethod, headers, body: withBody ? req : null },
      handler,
    );
  } catch (error) {
    // undici refuses some requests up front (a header it does not allow); that is the client's request at fault.
    res.off('close', onClose);
    respond(ex, { status: 400, code: 'bad_request', message: `cannot forward this request: ${(error as Error).message}` });
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function isStaleConnection(error: Error): boolean {
  const code = (error as NodeJS.ErrnoException).code;
  return code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE';
}

function forwardUpgrade(ex: Exchange, backend: Backend, headers: string[]): void {
  const req = ex.req;
  const socket = ex.socket as Duplex;
  const head = ex.head;
  if (head !== undefined && head.length > 0) socket.unshift(head);
  const upstream = (backend.secure ? https : http).request({
    host: backend.hostname,
    port: backend.port,
    method: req.method,
    path: req.url,
    headers,
    agent: false,
  });
  const abort = (): void => {
    upstream.destroy();
  };
  socket.once('close', abort);
  upstream.on('upgrade', (answer, backendSocket, backendHead) => {
    socket.off('close', abort);
    backendSocket.setNoDelay(true);
    if (socket.destroyed) {
      backendSocket.destroy();
      return;
    }
    backendSocket.on('error', ignoreError);
    const lines = [`HTTP/1.1 101 ${answer.statusMessage ?? 'Switching Protocols'}`];
    const raw = answer.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) lines.push(`${raw[i]}: ${raw[i + 1]}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    if (backendHead.length > 0) socket.write(backendHead);
    const closeBoth = (): void => {
      socket.destroy();
      backendSocket.destroy();
    };
    socket.once('close', closeBoth);
    backendSocket.once('close', closeBoth);
    socket.once('end', () => backendSocket.end());
    backendSocket.once('end', () => socket.end());
    backendSocket.pipe(socket);
    socket.pipe(backendSocket);
    ex.ctx.trackUpgrade(socket, backendSocket);
  });
  upstream.on('response', (answer) => {
    // The backend answered without upgrading (e.g. 403 from Jupyter): pass its answer on and close.
    socket.off('close', abort);
    const lines = [`HTTP/1.1 ${answer.statusCode ?? 502} ${answer.statusMessage ?? ''}`];
    for (const [name, value] of Object.entries(downstreamHeaders(answer.headers))) {
      for (const one of Array.isArray(value) ? value : [value]) lines.push(`${name}: ${one}`);
    }
    lines.push('Connection: close');
    socket.write(`${lines.join('\r\n')}\r\n\r\n`);
    answer.on('error', () => socket.destroy());
    answer.pipe(socket);
  });
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    socket.off('close', abort);
    backendFailed(ex, error);
  });
  upstream.end();
}

// ---------------------------------------------------------------------------------------------------------------
// Replies

function backendFailed(ex: Exchange, error: NodeJS.ErrnoException, answered = false): void {
  const reason = error.code ?? error.message;
  if (ex.gone) return;
  if (ex.res !== undefined && (answered || ex.res.headersSent)) {
    // The backend died mid-response: cut the client off too, so it does not take a short body for a whole one.
    ex.ctx.counters.errors++;
    ex.res.destroy();
    return;
  }
  ex.ctx.log.debug({ user: ex.user, reason }, 'backend unreachable');
  const who = ex.user === '' ? 'the hub' : `${ex.user}'s server`;
  respond(ex, { status: GATEWAY_ERROR_STATUS.backend_unreachable, code: 'backend_unreachable', message: `${who} did not answer (${reason})` });
}

/**
 * Sends a reply: a redirect, or an error as JSON `{ status, message }` (HTML page for browsers). On an upgrade
 * socket it is written as a raw HTTP response and the socket is closed.
 */
export function respond(ex: Exchange, reply: Reply): void {
  if (reply.status >= 500) ex.ctx.counters.errors++;
  const html = ex.accept.includes('text/html');
  const body = html ? htmlPage(reply) : `${JSON.stringify({ status: reply.status, message: reply.message })}\n`;
  const type = html ? 'text/html; charset=utf-8' : 'application/json';
  if (ex.res !== undefined) {
    const headers: string[] = ['Content-Type', type, 'Content-Length', String(Buffer.byteLength(body)), 'Cache-Control', 'no-store'];
    if (reply.location !== undefined) headers.push('Location', reply.location);
    ex.res.writeHead(reply.status, headers);
    ex.res.end(ex.req.method === 'HEAD' ? undefined : body);
    return;
  }
  const socket = ex.socket as Duplex;
  if (socket.destroyed) return;
  const location = reply.location === undefined ? '' : `Location: ${reply.location}\r\n`;
  socket.end(
    `HTTP/1.1 ${reply.status} ${STATUS_CODES[reply.status] ?? ''}\r\nContent-Type: ${type}\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\n${location}Connection: close\r\n\r\n${body}`,
  );
}

function htmlPage(reply: Reply): string {
  const title = `${reply.status} ${STATUS_CODES[reply.status] ?? ''}`;
  const link = reply.location === undefined ? '' : `<p><a href="${escapeHtml(reply.location)}">Continue</a></p>`;
  return `<!doctype html><meta charset="utf-8"><title>${title}</title><h1>${title}</h1><p>${escapeHtml(reply.message)}</p>${link}\n`;
}

// ---------------------------------------------------------------------------------------------------------------
// Helpers

function ignoreError(): void {}

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

function hasBody(req: IncomingMessage): boolean {
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i] as string;
    if (name.length === 14 && name.toLowerCase() === 'content-length') return raw[i + 1] !== '0';
    if (name.length === 17 && name.toLowerCase() === 'transfer-encoding') return true;
  }
  return false;
}

/** The value of one cookie (`prefix` is `name=`) in a Cookie header, or `undefined`. */
export function readCookie(header: string, prefix: string): string | undefined {
  let at = header.indexOf(prefix);
  while (at !== -1) {
    if (at === 0 || header[at - 1] === ' ' || header[at - 1] === ';') {
      const end = header.indexOf(';', at);
      return header.slice(at + prefix.length, end === -1 ? undefined : end).trim();
    }
    at = header.indexOf(prefix, at + 1);
  }
  return undefined;
}

/** A Cookie header without the login cookie (`''` when nothing else is left). */
export function withoutLoginCookie(header: string): string {
  if (!header.includes(LOGIN_PREFIX)) return header;
  return header
    .split(';')
    .map((part) => part.trim())
    .filter((part) => part !== '' && !part.startsWith(LOGIN_PREFIX))
    .join('; ');
}
