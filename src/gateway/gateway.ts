// The gateway: one HTTP server that proxies `/hub/*` to the hub and `/user/<name>/*` (HTTP and WebSocket) to
// that user's Jupyter server, using the route table and identities the hub link keeps.
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { GATEWAY_PATH, USER_HOST_REDEEM_PATH, signClientAddress, userHostRedeemResult } from '../protocol/gateway.js';
import { GatewayCloseError, HubUnavailableError, InvalidStateError } from './errors.js';
import { CredentialedSockets } from './credentialed-sockets.js';
import { PersonActivity } from './activity.js';
import { HubLink } from './hub-link.js';
import { resolveGatewayOptions, type GatewayOptions, type ResolvedGatewayOptions } from './options.js';
import { handleRequest, handleUpgrade, type ProxyContext } from './proxy.js';
import { backendOf, createUpstream } from './upstream.js';
import { RelayPools } from './relay.js';
import type { TransitionTable } from '../lib/state.js';

/**
 * Lifecycle of a gateway.
 * - `created`: built, not listening yet.
 * - `starting`: `listen()` is binding the port.
 * - `listening`: serving requests; the hub link runs (and reconnects) on its own.
 * - `closing`: `close()` is ending connections, the hub link and the server.
 * - `closed`: final.
 */
export type GatewayState = 'created' | 'starting' | 'listening' | 'closing' | 'closed';

const TRANSITIONS: TransitionTable<GatewayState> = {
  created: ['starting', 'closing'],
  starting: ['listening', 'closing'],
  listening: ['closing'],
  closing: ['closed'],
  closed: [],
};

const closing = (status: string, body = ''): Buffer =>
  Buffer.from(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${status.startsWith('503') ? 'Retry-After: 5\r\n' : ''}\r\n${body}`);
/** Answers written straight to a client socket the HTTP parser gave up on (or never handed a request). */
const TIMEOUT_408 = closing('408 Request Timeout');
const TOO_LARGE_431 = closing('431 Request Header Fields Too Large');
const BAD_REQUEST_400 = closing('400 Bad Request');
const UNAVAILABLE_503 = closing('503 Service Unavailable', 'too many connections to the gateway; retry\n');

/** Where a gateway listens. */
export interface GatewayAddress {
  readonly host: string;
  readonly port: number;
}

/** A running (or ready to run) gateway; see {@link createGateway}. */
export interface Gateway {
  /** Current lifecycle state. */
  readonly state: GatewayState;
  /** Where it listens, once `listen()` resolved. */
  readonly address: GatewayAddress | undefined;
  /** The link to the hub (route table, auth cache); exposed for status pages and tests. */
  readonly hubLink: HubLink;
  /** Options with defaults filled in. */
  readonly options: ResolvedGatewayOptions;
  /** Binds the port and starts the hub link. Throws `InvalidStateError` unless the gateway is `created`. */
  listen(): Promise<GatewayAddress>;
  /**
   * Stops everything: the server, open HTTP connections, proxied WebSockets, the hub link and kept-alive backend
   * connections. Idempotent; every step runs even if one fails (then rejects with `GatewayCloseError`).
   */
  close(): Promise<void>;
}

/**
 * Creates the HTTP/WebSocket front door. Nothing happens until `listen()`.
 *
 * @example
 * const gateway = createGateway({ hubUrl: 'http://127.0.0.1:8081', secret, port: 8000, log });
 * const { port } = await gateway.listen();
 * // … later
 * await gateway.close();
 */
export function createGateway(options: GatewayOptions): Gateway {
  const resolved = resolveGatewayOptions(options, GATEWAY_PATH);
  const log = resolved.log;
  const link = new HubLink(resolved.link);
  const hubUrl = new URL(resolved.hubUrl);
  const hub = backendOf(hubUrl);
  const upstream = createUpstream({ connectionsPerBackend: resolved.maxSocketsPerBackend, keepAliveTimeoutMs: 4_000 });
  // Servers on other machines: one pool each through their agent's relay, closed when their route goes or changes.
  const relays = new RelayPools({ connectionsPerServer: resolved.maxSocketsPerBackend, keepAliveTimeoutMs: 4_000, log });
  link.on('unroute', (user) => relays.forget(user));
  link.on('route', (route) => relays.forget(route.user, link.route(route.user)?.relay));
  link.on('routes', () => {
    for (const user of relays.users()) relays.forget(user, link.route(user)?.relay);
  });
  const upgraded = new Set<Duplex | Socket>();

  // WebSockets end with their credential: at its expiry, and when a revoke for its owner finds it no longer valid.
  const credentialed = new CredentialedSockets({ lookup: (kind, value) => link.lookup(kind, value), log });
  link.on('revoke', (user) => credentialed.recheck(user));
  const counters = { requests: 0, errors: 0 };
  const people = new PersonActivity();
  const ctx: ProxyContext = {
    hub,
    counters,
    allowedOrigins: resolved.allowedOrigins,
    trustProxy: resolved.trustProxy,
    signClientAddress: (address) => signClientAddress(resolved.secret, address),
    userHost: resolved.userHost,
    secret: resolved.secret,
    async redeemUserHostCode(code, user) {
      let response: Response;
      try {
        response = await fetch(new URL(USER_HOST_REDEEM_PATH, hubUrl), {
          method: 'POST',
          headers: { authorization: `Bearer ${resolved.secret}`, 'content-type': 'application/json' },
          body: JSON.stringify({ code, user }),
          signal: AbortSignal.timeout(resolved.link.authTimeoutMs),
        });
      } catch (error) {
        throw new HubUnavailableError('user host handshake', { cause: error });
      }
      if (!response.ok) throw new HubUnavailableError(`user host handshake: HTTP ${response.status}`);
      return userHostRedeemResult.parse(await response.json()).cookie ?? undefined;
    },
    upstream,
    relayDispatcher: (user, server) => relays.dispatcher(user, server),
    log,
    route: (user) => link.route(user),
    cachedIdentity: (kind, value) => link.cachedIdentity(kind, value),
    lookup: (kind, value) => link.lookup(kind, value),
    personRequest: (user) => people.note(user, Date.now()),
    trackUpgrade(client, backend, opened) {
      upgraded.add(client);
      upgraded.add(backend);
      client.once('close', () => upgraded.delete(client));
      backend.once('close', () => upgraded.delete(backend));
      if (opened !== undefined) credentialed.track(client, backend, opened);
    },
  };

  const server = http.createServer(
    {
      noDelay: true,
      headersTimeout: resolved.headersTimeoutMs,
      requestTimeout: resolved.requestTimeoutMs,
      keepAliveTimeout: resolved.idleTimeoutMs,
      // How often Node looks for connections past those limits (a walk over the open connections): often, so that a
      // timeout is not thirty seconds late and connections opened together by an attacker are closed in small
      // batches rather than in one burst that stalls everyone else's traffic.
      connectionsCheckingInterval: Math.max(50, Math.min(1_000, Math.floor(resolved.headersTimeoutMs / 100))),
    },
    (req, res) => handleRequest(ctx, req, res),
  );
  server.on('upgrade', (req, socket, head) => handleUpgrade(ctx, req, socket, head));
  server.on('clientError', (error, socket) => {
    const code = (error as NodeJS.ErrnoException).code;
    // A connection that never sent a byte gets no answer: closing it is all it costs (thousands may time out at once).
    if (code === 'ERR_HTTP_REQUEST_TIMEOUT' && (socket as Socket).bytesRead === 0) return void socket.destroy();
    log.debug({ err: (error as Error).message, code }, 'client error');
    const answer = code === 'ERR_HTTP_REQUEST_TIMEOUT' ? TIMEOUT_408 : code === 'HPE_HEADER_OVERFLOW' ? TOO_LARGE_431 : BAD_REQUEST_400;
    if (socket.writable) socket.end(answer);
    else socket.destroy();
  });
  // The connection cap: one past it gets a 503 and is closed before anything is parsed.
  let connections = 0;
  server.on('connection', (socket: Socket) => {
    if (connections >= resolved.maxConnections) {
      counters.errors++;
      socket.end(UNAVAILABLE_503);
      socket.destroySoon();
      return;
    }
    connections++;
    socket.once('close', () => connections--);
  });

  // Counters go to the hub every few seconds; the timer does not keep the process alive.
  const statsTimer = setInterval(() => link.report({ ...counters, websockets: Math.floor(upgraded.size / 2) }), resolved.statsIntervalMs);
  statsTimer.unref();
  // Requests people made, once a second at most, for the hub's idle culler.
  const activityTimer = setInterval(() => {
    const batch = people.take();
    if (batch !== undefined) link.reportActivity(batch);
  }, 1_000);
  activityTimer.unref();

  let state: GatewayState = 'created';
  let address: GatewayAddress | undefined;
  let closing: Promise<void> | undefined;

  const transition = (next: GatewayState): void => {
    if (!TRANSITIONS[state].includes(next)) throw new InvalidStateError('gateway', state, `move to ${next}`);
    log.debug({ from: state, to: next }, 'gateway state');
    state = next;
  };

  async function shutdown(): Promise<void> {
    clearInterval(statsTimer);
    clearInterval(activityTimer);
    transition('closing');
    const failures: unknown[] = [];
    const step = async (name: string, fn: () => unknown): Promise<void> => {
      try {
        await fn();
      } catch (error) {
        log.warn({ err: error, step: name }, 'gateway close step failed');
        failures.push(error);
      }
    };
    const serverClosed = server.listening
      ? new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())))
      : Promise.resolve();
    await step('close connections', () => server.closeAllConnections());
    await step('forget websocket credentials', () => credentialed.clear());
    await step('close websockets', () => {
      for (const socket of upgraded) socket.destroy();
      upgraded.clear();
    });
    await step('close hub link', () => link.close());
    await step('close backend connections', () => upstream.destroy());
    await step('close relay connections', () => relays.close());
    await step('close server', () => serverClosed);
    transition('closed');
    if (failures.length > 0) throw new GatewayCloseError('gateway', failures);
  }

  return {
    get state() {
      return state;
    },
    get address() {
      return address;
    },
    hubLink: link,
    options: resolved,
    async listen() {
      if (state !== 'created') throw new InvalidStateError('gateway', state, 'listen');
      transition('starting');
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(resolved.port, resolved.host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      if ((state as GatewayState) !== 'starting') {
        // close() ran while binding: it could not close a server that was not listening yet.
        server.close();
        throw new InvalidStateError('gateway', state, 'finish listen');
      }
      const info = server.address() as AddressInfo;
      address = { host: info.address, port: info.port };
      transition('listening');
      link.start();
      log.info({ host: info.address, port: info.port, hub: resolved.hubUrl }, 'gateway listening');
      return address;
    },
    close() {
      closing ??= shutdown();
      return closing;
    },
  };
}
