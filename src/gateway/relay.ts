// The gateway's side of an agent's TLS relay (servers on other machines, protocol/relay.ts): connections pinned to
// the relay's certificate that name the server and its token in a preamble before any HTTP, and one undici pool per
// relayed server (the preamble binds a connection to one server, so connections are never shared between two).
import type { Socket } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { urlHost } from '../lib/address.js';
import type { Logger } from '../lib/log.js';
import { pinnedConnect } from '../lib/tls.js';
import { relayPreamble, type RelayTarget } from '../protocol/relay.js';

/** A server behind a relay and its token (what the preamble carries). */
export interface RelayedServer {
  readonly relay: RelayTarget;
  readonly token: string;
}

/**
 * Opens a connection to `server`'s relay, pinned to its certificate, and writes the preamble once the pin held;
 * then calls back with the socket, ready for HTTP. Shaped like Node's `createConnection` and undici's `connect`.
 *
 * @example
 * http.request({ path, headers, createConnection: (_o, cb) => relayConnect(server, cb) });
 */
export function relayConnect(server: RelayedServer, callback: (error: Error | null, socket?: Socket) => void): void {
  pinnedConnect({ host: server.relay.host, port: server.relay.relayPort, fingerprint: server.relay.fingerprint }, (error, socket) => {
    if (error || !socket) return callback(error ?? new Error('no socket'));
    socket.write(relayPreamble(server.relay.serverPort, server.token));
    callback(null, socket);
  });
}

/** Options of {@link RelayPools}. */
export interface RelayPoolsOptions {
  /** Most connections kept to one relayed server. */
  readonly connectionsPerServer: number;
  /** Idle kept-alive connection lifetime, in milliseconds. */
  readonly keepAliveTimeoutMs: number;
  readonly log: Logger;
}

interface Entry {
  readonly key: string;
  readonly pool: Pool;
}

/**
 * One undici pool per relayed server, by user; a user's pool is replaced when their route changes and closed when
 * it goes.
 *
 * @example
 * const pools = new RelayPools({ connectionsPerServer: 256, keepAliveTimeoutMs: 4_000, log });
 * pools.dispatcher('alice', { relay, token }).dispatch(options, handler);
 * pools.forget('alice');
 */
export class RelayPools {
  readonly #byUser = new Map<string, Entry>();

  constructor(private readonly options: RelayPoolsOptions) {}

  /** The pool of `user`'s relayed server (made on first use). */
  dispatcher(user: string, server: RelayedServer): Dispatcher {
    const key = keyOf(server);
    const existing = this.#byUser.get(user);
    if (existing?.key === key) return existing.pool;
    if (existing) this.#close(existing);
    const pool = new Pool(`https://${urlHost(server.relay.host)}:${server.relay.relayPort}`, {
      connections: this.options.connectionsPerServer,
      keepAliveTimeout: this.options.keepAliveTimeoutMs,
      keepAliveMaxTimeout: this.options.keepAliveTimeoutMs,
      headersTimeout: 0,
      bodyTimeout: 0,
      connect: (_options, callback) => relayConnect(server, callback as (error: Error | null, socket?: Socket) => void),
    });
    this.#byUser.set(user, { key, pool });
    return pool;
  }

  /** Closes the pool of `user` unless `current` (their route now) is still the server it reaches. */
  forget(user: string, current?: RelayedServer): void {
    const entry = this.#byUser.get(user);
    if (!entry || (current !== undefined && keyOf(current) === entry.key)) return;
    this.#close(entry);
    this.#byUser.delete(user);
  }

  /** Users that have a pool now. */
  users(): string[] {
    return [...this.#byUser.keys()];
  }

  /** Closes every pool. */
  async close(): Promise<void> {
    const pools = [...this.#byUser.values()].map((entry) => entry.pool.destroy());
    this.#byUser.clear();
    await Promise.allSettled(pools);
  }

  #close(entry: Entry): void {
    entry.pool.destroy().catch((error: unknown) => this.options.log.debug({ err: (error as Error).message }, 'closing a relay pool failed'));
  }
}

function keyOf(server: RelayedServer): string {
  const { host, relayPort, serverPort, fingerprint } = server.relay;
  return `${host} ${relayPort} ${serverPort} ${fingerprint} ${server.token}`;
}
