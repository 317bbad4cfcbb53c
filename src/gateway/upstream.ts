// Plain HTTP requests go upstream over undici's pooled HTTP/1.1 client (WebSocket upgrades keep Node's own
// client, see proxy.ts): it parses each response once and builds no ClientRequest/IncomingMessage pair per
// request, which is where a Node proxy spends its time (about 1.5× the req/s of `http.request` at 10 connections).
import type { IncomingHttpHeaders } from 'node:http';
import { Agent, type Dispatcher } from 'undici';
import { hostOfUrl } from '../lib/address.js';
import type { RelayedServer } from './relay.js';

/** Where a request is forwarded: the hub or one user's server. */
export interface Backend {
  readonly secure: boolean;
  /** Host name or address, IPv6 without brackets (as `net.connect` wants it). */
  readonly hostname: string;
  readonly port: number;
  /** `http://host:port`, the key of the backend's connection pool. */
  readonly origin: string;
  /** A user's server behind its agent's TLS relay (another machine): reached only through that relay. */
  readonly relay?: RelayedServer;
}

/**
 * The backend an `http(s)://` URL points at.
 *
 * @example
 * backendOf(new URL('http://[::1]:8888/user/a/')); // { secure: false, hostname: '::1', port: 8888, origin: 'http://[::1]:8888' }
 */
export function backendOf(url: URL): Backend {
  const secure = url.protocol === 'https:';
  return {
    secure,
    hostname: hostOfUrl(url),
    port: url.port === '' ? (secure ? 443 : 80) : Number(url.port),
    origin: url.origin,
  };
}

/** Options of {@link createUpstream}. */
export interface UpstreamOptions {
  /** Most connections kept to one backend (a user's server, the hub). */
  readonly connectionsPerBackend: number;
  /**
   * How long an idle kept-alive connection stays open, in milliseconds: shorter than a typical backend's own
   * idle timeout (Node 5 s, Tornado longer), so the backend never closes one under a request.
   */
  readonly keepAliveTimeoutMs: number;
}

/**
 * The dispatcher the proxy sends plain requests through. No header or body timeouts: a Jupyter server may take
 * long to answer (a big save) or stream for as long as the client listens (event streams); the client's own
 * disconnect is what ends a request.
 *
 * @example
 * const upstream = createUpstream({ connectionsPerBackend: 256, keepAliveTimeoutMs: 4_000 });
 * // … later
 * await upstream.destroy();
 */
export function createUpstream(options: UpstreamOptions): Dispatcher {
  return new Agent({
    connections: options.connectionsPerBackend,
    keepAliveTimeout: options.keepAliveTimeoutMs,
    keepAliveMaxTimeout: options.keepAliveTimeoutMs,
    headersTimeout: 0,
    bodyTimeout: 0,
  });
}

/**
 * A response's headers as the client gets them: all but the hop-by-hop ones (`Connection`, `Keep-Alive`).
 *
 * @example
 * downstreamHeaders({ 'content-type': 'text/plain', connection: 'keep-alive' }); // { 'content-type': 'text/plain' }
 */
export function downstreamHeaders(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  if (headers.connection === undefined && headers['keep-alive'] === undefined) return headers;
  const out: IncomingHttpHeaders = { ...headers };
  delete out.connection;
  delete out['keep-alive'];
  return out;
}
