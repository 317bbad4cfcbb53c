// The gateway's WebSocket link to the hub: keeps the route table and answers auth lookups, with a cache, across
// hub restarts (reconnects with capped backoff and keeps serving what it already knows meanwhile).
import { EventEmitter } from 'node:events';
import WebSocket from 'ws';
import { urlHost } from '../lib/address.js';
import { backoffMs } from '../lib/backoff.js';
import type { Logger } from 'pino';
import { hubToGatewaySchema, type GatewayStats, type GatewayToHub, type HubToGateway, type Identity, type Route } from '../protocol/gateway.js';
import { AuthCache, type CredentialKind } from './auth-cache.js';
import { GatewayCloseError, HubUnavailableError, InvalidStateError } from './errors.js';
import type { TransitionTable } from '../lib/state.js';
import { backendOf, type Backend } from './upstream.js';
import { parseRelayUrl, RELAY_PROTOCOL } from '../protocol/relay.js';

/**
 * Lifecycle of the hub link.
 * - `idle`: created, `start()` not called yet.
 * - `connecting`: dialling the hub (first time or after a drop).
 * - `open`: connected; the route table is fresh and auth lookups are sent.
 * - `backoff`: the link dropped or could not be opened; waiting before dialling again. Routes and cached
 *   identities are still served; uncached credentials get `HubUnavailableError`.
 * - `closed`: `close()` was called; final.
 */
export type HubLinkState = 'idle' | 'connecting' | 'open' | 'backoff' | 'closed';

const TRANSITIONS: TransitionTable<HubLinkState> = {
  idle: ['connecting', 'closed'],
  connecting: ['open', 'backoff', 'closed'],
  open: ['backoff', 'closed'],
  backoff: ['connecting', 'closed'],
  closed: [],
};

/** Options of {@link HubLink}. */
export interface HubLinkOptions {
  /** WebSocket URL of `GATEWAY_PATH` on the hub, e.g. `ws://127.0.0.1:8081/hub/internal/gateway`. Required. */
  url: string;
  /** Gateway secret, sent as `Authorization: Bearer <secret>`. Required. */
  secret: string;
  /**
   * How long a valid credential's identity is reused without asking the hub, in milliseconds.
   * @default 60_000
   */
  authCacheTtlMs?: number;
  /**
   * How long an invalid credential is remembered as invalid, in milliseconds.
   * @default 5_000
   */
  authNegativeTtlMs?: number;
  /**
   * Most cached identities per credential kind (cookie / token); the oldest are dropped first.
   * @default 10_000
   */
  authCacheMaxEntries?: number;
  /**
   * How long an auth lookup waits for the hub before failing with `HubUnavailableError`, in milliseconds.
   * @default 5_000
   */
  authTimeoutMs?: number;
  /**
   * First reconnect delay after the link drops, in milliseconds; doubled on each failed attempt (with jitter).
   * @default 250
   */
  reconnectMinMs?: number;
  /**
   * Cap of the reconnect delay, in milliseconds.
   * @default 5_000
   */
  reconnectMaxMs?: number;
  /**
   * How often the link pings the hub, in milliseconds; a link with no pong by the next ping is dropped and redialled.
   * @default 15_000
   */
  pingIntervalMs?: number;
  /** Logger. Required (the gateway passes its own). */
  log: Logger;
}

/** {@link HubLinkOptions} with every default filled in. */
export type ResolvedHubLinkOptions = Required<HubLinkOptions>;

/**
 * Fills in the defaults of {@link HubLinkOptions}; the only place they are written.
 *
 * @example
 * const options = resolveHubLinkOptions({ url: 'ws://127.0.0.1:8081/hub/internal/gateway', secret, log });
 * options.authCacheTtlMs; // 60000
 */
export function resolveHubLinkOptions(options: HubLinkOptions): ResolvedHubLinkOptions {
  return {
    url: options.url,
    secret: options.secret,
    authCacheTtlMs: options.authCacheTtlMs ?? 60_000,
    authNegativeTtlMs: options.authNegativeTtlMs ?? 5_000,
    authCacheMaxEntries: options.authCacheMaxEntries ?? 10_000,
    authTimeoutMs: options.authTimeoutMs ?? 5_000,
    reconnectMinMs: options.reconnectMinMs ?? 250,
    reconnectMaxMs: options.reconnectMaxMs ?? 5_000,
    pingIntervalMs: options.pingIntervalMs ?? 15_000,
    log: options.log,
  };
}

/** A route with what the proxy needs per request computed once: where to connect and the header to send. */
export interface ResolvedRoute extends Backend {
  readonly route: Route;
  /** `token <route.token>`, sent as the backend's `Authorization` header. */
  readonly authorization: string;
}

/** Events of a {@link HubLink}. */
export interface HubLinkEvents {
  /** The link moved from `previous` to `state`. */
  state: [state: HubLinkState, previous: HubLinkState];
  /** A `routes` snapshot replaced the table (on every (re)connect). */
  routes: [count: number];
  /** A route was added or replaced. */
  route: [route: Route];
  /** A user's route was removed. */
  unroute: [user: string];
  /** Cached identities were forgotten: all (`user` undefined) or one user's. */
  revoke: [user: string | undefined];
}

interface PendingLookup {
  readonly kind: CredentialKind;
  readonly value: string;
  readonly generation: number;
  readonly timer: NodeJS.Timeout;
  readonly resolve: (identity: Identity | null) => void;
  readonly reject: (error: Error) => void;
}

/**
 * WebSocket client of the hub's gateway endpoint. Call `start()` once; it then stays connected (redialling with
 * capped backoff) until `close()`.
 *
 * @example
 * const link = new HubLink({ url: 'ws://127.0.0.1:8081/hub/internal/gateway', secret, log });
 * link.start();
 * const identity = link.cachedIdentity('token', t) ?? (await link.lookup('token', t));
 * const target = link.route('alice');
 */
export class HubLink extends EventEmitter<HubLinkEvents> {
  readonly options: ResolvedHubLinkOptions;
  #state: HubLinkState = 'idle';
  #socket: WebSocket | undefined;
  #routes = new Map<string, ResolvedRoute>();
  #cache: AuthCache;
  #pending = new Map<number, PendingLookup>();
  #inflight: Record<CredentialKind, Map<string, Promise<Identity | null>>> = { cookie: new Map(), token: new Map() };
  #nextId = 1;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #pingTimer: NodeJS.Timeout | undefined;
  #awaitingPong = false;
  #closing: Promise<void> | undefined;
  /** Auth lookups sent to the hub since start (for tests and metrics). */
  lookupsSent = 0;

  constructor(options: HubLinkOptions) {
    super();
    this.options = resolveHubLinkOptions(options);
    this.#cache = new AuthCache({
      positiveTtlMs: this.options.authCacheTtlMs,
      negativeTtlMs: this.options.authNegativeTtlMs,
      maxEntries: this.options.authCacheMaxEntries,
    });
  }

  get state(): HubLinkState {
    return this.#state;
  }

  /** Number of routes in the table. */
  get routeCount(): number {
    return this.#routes.size;
  }

  /** Starts dialling the hub. Throws `InvalidStateError` unless the link is `idle`. */
  start(): void {
    if (this.#state !== 'idle') throw new InvalidStateError('hub link', this.#state, 'start');
    this.#connect();
  }

  /** The route of `user`, or `undefined` when the user has no running server. */
  route(user: string): ResolvedRoute | undefined {
    return this.#routes.get(user);
  }

  /** The cached identity of a credential: an identity, `null` (known invalid), or `undefined` (ask the hub). */
  cachedIdentity(kind: CredentialKind, value: string): Identity | null | undefined {
    return this.#cache.get(kind, value);
  }

  /**
   * Asks the hub who a credential belongs to (`null`: nobody), caching the answer. Concurrent lookups of the same
   * credential share one request. Rejects with `HubUnavailableError` when the link is not open or the hub does
   * not answer within `authTimeoutMs`.
   */
  lookup(kind: CredentialKind, value: string): Promise<Identity | null> {
    const cached = this.#cache.get(kind, value);
    if (cached !== undefined) return Promise.resolve(cached);
    const inflight = this.#inflight[kind];
    const existing = inflight.get(value);
    if (existing !== undefined) return existing;
    const socket = this.#socket;
    if (this.#state !== 'open' || socket === undefined) return Promise.reject(new HubUnavailableError(this.#state));
    const id = this.#nextId++;
    const generation = this.#cache.generation;
    const promise = new Promise<Identity | null>((resolve, reject) => {
      const timer = setTimeout(() => this.#settle(id, new HubUnavailableError(`${this.#state}, no answer`)), this.options.authTimeoutMs);
      timer.unref();
      this.#pending.set(id, { kind, value, generation, timer, resolve, reject });
    });
    inflight.set(value, promise);
    const message: GatewayToHub = { type: 'auth', id, kind, value };
    this.lookupsSent++;
    socket.send(JSON.stringify(message), (error) => {
      if (error) this.#settle(id, new HubUnavailableError(this.#state, { cause: error }));
    });
    return promise;
  }

  /** Sends the gateway's counters to the hub (for /hub/metrics); dropped while the link is down. */
  report(stats: GatewayStats): void {
    const socket = this.#socket;
    if (this.#state !== 'open' || socket === undefined) return;
    const message: GatewayToHub = { type: 'stats', ...stats };
    socket.send(JSON.stringify(message), () => undefined);
  }

  /** Sends the users a person made requests for, with the time of the last one (for the idle culler). */
  reportActivity(users: Record<string, string>): void {
    const socket = this.#socket;
    if (this.#state !== 'open' || socket === undefined) return;
    const message: GatewayToHub = { type: 'activity', users };
    socket.send(JSON.stringify(message), () => undefined);
  }

  /**
   * Closes the link for good; idempotent (a second call returns the same promise). Pending lookups fail with
   * `HubUnavailableError`; the route table and cache are kept for readers until the gateway drops the link.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const previous = this.#state;
    if (previous !== 'closed') this.#transition('closed');
    const failures: unknown[] = [];
    const step = (fn: () => void): void => {
      try {
        fn();
      } catch (error) {
        failures.push(error);
      }
    };
    step(() => clearTimeout(this.#reconnectTimer));
    step(() => clearInterval(this.#pingTimer));
    step(() => this.#failPending());
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket !== undefined && socket.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          socket.terminate();
          resolve();
        }, 1_000);
        timer.unref();
        socket.once('close', () => {
          clearTimeout(timer);
          resolve();
        });
        step(() => socket.close(1001, 'gateway closing'));
      });
    }
    if (failures.length > 0) throw new GatewayCloseError('hub link', failures);
  }

  #transition(next: HubLinkState): void {
    const previous = this.#state;
    if (!TRANSITIONS[previous].includes(next)) throw new InvalidStateError('hub link', previous, `move to ${next}`);
    this.#state = next;
    this.options.log.debug({ from: previous, to: next }, 'hub link state');
    this.emit('state', next, previous);
  }

  #connect(): void {
    this.#transition('connecting');
    const socket = new WebSocket(this.options.url, {
      headers: { authorization: `Bearer ${this.options.secret}` },
      handshakeTimeout: this.options.authTimeoutMs,
      perMessageDeflate: false,
    });
    this.#socket = socket;
    socket.on('open', () => {
      if (this.#socket !== socket) return;
      this.#attempt = 0;
      this.#transition('open');
      this.options.log.info({ url: this.options.url }, 'hub link open');
      this.#awaitingPong = false;
      this.#pingTimer = setInterval(() => this.#ping(socket), this.options.pingIntervalMs);
      this.#pingTimer.unref();
    });
    socket.on('pong', () => {
      this.#awaitingPong = false;
    });
    socket.on('message', (data, isBinary) => {
      if (this.#socket !== socket || isBinary) return;
      this.#receive(data.toString());
    });
    socket.on('unexpected-response', (_req, res) => {
      this.options.log.warn({ status: res.statusCode }, 'hub refused the gateway link');
      res.resume();
      socket.terminate();
    });
    socket.on('error', (error) => {
      this.options.log.debug({ err: error.message }, 'hub link error');
    });
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      clearInterval(this.#pingTimer);
      this.#failPending();
      if (this.#state === 'closed') return;
      this.#scheduleReconnect();
    });
  }

  #ping(socket: WebSocket): void {
    if (this.#awaitingPong) {
      this.options.log.warn('hub link missed a pong; reconnecting');
      socket.terminate();
      return;
    }
    this.#awaitingPong = true;
    socket.ping();
  }

  #scheduleReconnect(): void {
    const wasOpen = this.#state === 'open';
    this.#transition('backoff');
    const base = backoffMs(this.#attempt, this.options.reconnectMinMs, this.options.reconnectMaxMs);
    const delayMs = Math.round(base / 2 + (Math.random() * base) / 2);
    this.#attempt++;
    if (wasOpen) this.options.log.warn({ delayMs }, 'hub link dropped; serving known routes meanwhile');
    this.#reconnectTimer = setTimeout(() => this.#connect(), delayMs);
    this.#reconnectTimer.unref();
  }

  #failPending(): void {
    for (const id of [...this.#pending.keys()]) this.#settle(id, new HubUnavailableError(this.#state));
  }

  #settle(id: number, result: Error | Identity | null): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#pending.delete(id);
    clearTimeout(pending.timer);
    this.#inflight[pending.kind].delete(pending.value);
    if (result instanceof Error) {
      pending.reject(result);
      return;
    }
    this.#cache.set(pending.kind, pending.value, result, pending.generation);
    pending.resolve(result);
  }

  #receive(text: string): void {
    let message: HubToGateway;
    try {
      const parsed = hubToGatewaySchema.safeParse(JSON.parse(text));
      if (!parsed.success) {
        this.options.log.warn({ problem: parsed.error.message }, 'ignoring an invalid message from the hub');
        return;
      }
      message = parsed.data;
    } catch {
      this.options.log.warn('ignoring a message from the hub that is not JSON');
      return;
    }
    switch (message.type) {
      case 'authResult':
        this.#settle(message.id, message.identity);
        return;
      case 'routes': {
        const next = new Map<string, ResolvedRoute>();
        for (const route of message.routes) {
          const resolved = resolveRoute(route, this.options.log);
          if (resolved !== undefined) next.set(route.user, resolved);
        }
        this.#routes = next;
        // A revoke sent while the link was down never arrived: what was cached before (re)connecting is asked again.
        this.#cache.revoke();
        this.options.log.info({ routes: next.size }, 'route table received');
        this.emit('routes', next.size);
        return;
      }
      case 'route': {
        const resolved = resolveRoute(message.route, this.options.log);
        if (resolved === undefined) return;
        this.#routes.set(message.route.user, resolved);
        this.emit('route', message.route);
        return;
      }
      case 'unroute': {
        const current = this.#routes.get(message.user);
        if (current === undefined || current.route.sessionId !== message.sessionId) return;
        this.#routes.delete(message.user);
        this.emit('unroute', message.user);
        return;
      }
      case 'revoke':
        this.#cache.revoke(message.user);
        this.emit('revoke', message.user);
        return;
    }
  }
}

function resolveRoute(route: Route, log: Logger): ResolvedRoute | undefined {
  if (route.target.startsWith(RELAY_PROTOCOL)) {
    // A server on another machine, behind its agent's TLS relay: only ever reached through it, pinned.
    const relay = parseRelayUrl(route.target);
    if (relay === undefined) {
      log.warn({ user: route.user }, 'ignoring a route whose relay URL is malformed');
      return undefined;
    }
    return {
      route, secure: true, hostname: relay.host, port: relay.relayPort, origin: `https://${urlHost(relay.host)}:${relay.relayPort}`,
      relay: { relay, token: route.token }, authorization: `token ${route.token}`,
    };
  }
  let url: URL;
  try {
    url = new URL(route.target);
  } catch {
    log.warn({ user: route.user, target: route.target }, 'ignoring a route whose target is not a URL');
    return undefined;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    log.warn({ user: route.user, target: route.target }, 'ignoring a route whose target is not http(s)');
    return undefined;
  }
  return { route, ...backendOf(url), authorization: `token ${route.token}` };
}
