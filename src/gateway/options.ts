// The gateway's options, with their defaults filled in one place.
import { createLogger, type Logger } from '../lib/log.js';
import { resolveHubLinkOptions, type ResolvedHubLinkOptions } from './hub-link.js';
import { userHostLayout, type UserHostLayout } from './pipeline/hosts.js';

/** Options of {@link createGateway}. */
export interface GatewayOptions {
  /**
   * Address to listen on.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * HTTP port to listen on; 0 picks a free port (read it from `listen()` or `address`).
   * @default 8000
   */
  port?: number;
  /** HTTP base URL of the hub, the target of `/hub/*`, e.g. `http://127.0.0.1:8081`. Required. */
  hubUrl: string;
  /**
   * WebSocket URL of the hub's gateway endpoint (`GATEWAY_PATH`).
   * @default hubUrl with `ws:`/`wss:` and path `GATEWAY_PATH`
   */
  hubLinkUrl?: string;
  /** Gateway secret (contents of `GATEWAY_SECRET_FILE`), sent to the hub as `Authorization: Bearer`. Required. */
  secret: string;
  /**
   * Extra browser origins (`scheme://host[:port]`) allowed to send cookie-authenticated WebSocket upgrades and
   * non-GET requests; the gateway's own origin always is.
   * @default []
   */
  allowedOrigins?: readonly string[];
  /**
   * Host name of each user's server, as JupyterHub's `subdomain_host`: `"{user}.pool.example"` serves alice's
   * server at `alice.pool.example/user/alice/` and the hub at `pool.example` (same scheme and port), so no user's
   * JavaScript ever runs on the hub's origin. A user host gets its own login cookie through a redirect handshake
   * with the hub. `null`: every server is under `/user/<name>/` on the hub's origin (admins then see a warning
   * before opening another user's server).
   * @default null
   */
  userHost?: string | null;
  /**
   * How long a valid credential's identity is reused without asking the hub, in milliseconds.
   * @default 60_000 (see `HubLinkOptions`)
   */
  authCacheTtlMs?: number;
  /**
   * How long an invalid credential is remembered as invalid, in milliseconds.
   * @default 5_000 (see `HubLinkOptions`)
   */
  authNegativeTtlMs?: number;
  /**
   * How long a request waits for the hub to identify an uncached credential before getting 503, in milliseconds.
   * @default 5_000 (see `HubLinkOptions`)
   */
  authTimeoutMs?: number;
  /**
   * Trust `X-Forwarded-For/-Proto/-Host` sent by the client (set only behind a TLS terminator or load balancer
   * you run). When false they are replaced, and the origin check uses `http`.
   * @default false
   */
  trustProxy?: boolean;
  /**
   * Most open keep-alive connections to one backend (the hub or one user's server).
   * @default 256
   */
  maxSocketsPerBackend?: number;
  /**
   * How long a client has to send a whole request head (request line and headers) from when it connects or starts
   * the next request, in milliseconds; then the connection gets 408 and is closed (slowloris, and connections that
   * never send anything).
   * @default 10_000
   */
  headersTimeoutMs?: number;
  /**
   * How long a client has to send a whole request, body included, in milliseconds (408 after).
   * @default 300_000
   */
  requestTimeoutMs?: number;
  /**
   * How long a kept-alive connection may sit idle between requests before the gateway closes it, in milliseconds.
   * @default 65_000
   */
  idleTimeoutMs?: number;
  /**
   * Most client connections open at once (HTTP and proxied WebSockets); one more is answered 503 and closed.
   * @default 10_000
   */
  maxConnections?: number;
  /**
   * How often the gateway reports its request and error counters to the hub (for /hub/metrics), in milliseconds.
   * @default 5000
   */
  statsIntervalMs?: number;
  /**
   * Logger; nothing is logged per request at info level.
   * @default createLogger('gateway')
   */
  log?: Logger;
}

/** {@link GatewayOptions} with every default filled in. */
export interface ResolvedGatewayOptions {
  readonly host: string;
  readonly port: number;
  readonly hubUrl: string;
  readonly secret: string;
  readonly allowedOrigins: ReadonlySet<string>;
  readonly userHost: UserHostLayout | undefined;
  /** The hub link's options (its URL, the secret, the auth cache and timeouts). */
  readonly link: ResolvedHubLinkOptions;
  readonly trustProxy: boolean;
  readonly maxSocketsPerBackend: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  readonly statsIntervalMs: number;
  readonly log: Logger;
}

/**
 * Fills in the defaults of {@link GatewayOptions}; the only place they are written.
 *
 * @example
 * const resolved = resolveGatewayOptions({ hubUrl: 'http://127.0.0.1:8081', secret });
 * resolved.link.url; // 'ws://127.0.0.1:8081/hub/internal/gateway'
 */
export function resolveGatewayOptions(options: GatewayOptions, gatewayPath: string): ResolvedGatewayOptions {
  const hub = new URL(options.hubUrl);
  const defaultLink = new URL(gatewayPath, hub);
  defaultLink.protocol = hub.protocol === 'https:' ? 'wss:' : 'ws:';
  const log = options.log ?? createLogger('gateway');
  return {
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 8000,
    hubUrl: options.hubUrl,
    secret: options.secret,
    allowedOrigins: new Set((options.allowedOrigins ?? []).map((origin) => new URL(origin).origin)),
    userHost: options.userHost === undefined || options.userHost === null ? undefined : userHostLayout(options.userHost),
    link: resolveHubLinkOptions({
      url: options.hubLinkUrl ?? defaultLink.href,
      secret: options.secret,
      authCacheTtlMs: options.authCacheTtlMs,
      authNegativeTtlMs: options.authNegativeTtlMs,
      authTimeoutMs: options.authTimeoutMs,
      log,
    }),
    trustProxy: options.trustProxy ?? false,
    maxSocketsPerBackend: options.maxSocketsPerBackend ?? 256,
    headersTimeoutMs: options.headersTimeoutMs ?? 10_000,
    // Node requires the whole-request limit to be at least the head's.
    requestTimeoutMs: Math.max(options.requestTimeoutMs ?? 300_000, options.headersTimeoutMs ?? 10_000),
    idleTimeoutMs: options.idleTimeoutMs ?? 65_000,
    maxConnections: options.maxConnections ?? 10_000,
    statsIntervalMs: options.statsIntervalMs ?? 5_000,
    log,
  };
}
