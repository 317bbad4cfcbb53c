// Proxied WebSockets and the credentials that opened them: a WebSocket lives no longer than its credential. It ends
// at the credential's expiry, and when the hub revokes its owner's identities (token deleted, user disabled or
// deleted, logout) and the credential no longer resolves, or no longer reaches that server.
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../lib/log.js';
import type { Identity } from '../protocol/gateway.js';
import type { CredentialKind } from './auth-cache.js';
import type { UpgradeCredential } from './pipeline/exchange.js';

interface Tracked {
  readonly client: Duplex;
  readonly backend: Socket;
  readonly opened: UpgradeCredential;
  readonly timer: NodeJS.Timeout | undefined;
}

/** What {@link CredentialedSockets} needs: a fresh credential lookup (the hub link's) and a logger. */
export interface CredentialedSocketsContext {
  lookup(kind: CredentialKind, value: string): Promise<Identity | null>;
  readonly log: Logger;
}

/** Whether `identity` may still reach `server`'s server (the gateway's authorize step, for a live socket). */
function reaches(identity: Identity, server: string): boolean {
  const servers = identity.servers;
  return servers === undefined ? identity.user === server || identity.admin : servers === '*' || servers.includes(server);
}

/**
 * The gateway's proxied WebSockets by owner.
 *
 * @example
 * const sockets = new CredentialedSockets({ lookup: (k, v) => link.lookup(k, v), log });
 * sockets.track(client, backend, { kind: 'token', credential: t, identity, server: 'alice' });
 * link.on('revoke', (user) => sockets.recheck(user));
 */
export class CredentialedSockets {
  #byOwner = new Map<string, Set<Tracked>>();

  constructor(private readonly ctx: CredentialedSocketsContext) {}

  /** Number of tracked WebSockets. */
  get size(): number {
    let n = 0;
    for (const set of this.#byOwner.values()) n += set.size;
    return n;
  }

  /** Remembers a WebSocket until it closes; ends it at the credential's expiry. */
  track(client: Duplex, backend: Socket, opened: UpgradeCredential): void {
    const owner = opened.identity.user;
    const expiresAtMs = opened.identity.expiresAtMs;
    let timer: NodeJS.Timeout | undefined;
    if (expiresAtMs !== undefined) {
      // setTimeout's limit is about 24.8 days; a later expiry is caught by the next revoke or hub reconnect instead.
      const delay = expiresAtMs - Date.now();
      if (delay <= 0) return this.#end({ client, backend, opened, timer: undefined }, 'its credential expired');
      if (delay < 2 ** 31 - 1) {
        timer = setTimeout(() => this.#end(entry, 'its credential expired'), delay);
        timer.unref();
      }
    }
    const entry: Tracked = { client, backend, opened, timer };
    let set = this.#byOwner.get(owner);
    if (set === undefined) this.#byOwner.set(owner, (set = new Set()));
    set.add(entry);
    client.once('close', () => {
      clearTimeout(timer);
      const current = this.#byOwner.get(owner);
      current?.delete(entry);
      if (current?.size === 0) this.#byOwner.delete(owner);
    });
  }

  /**
   * Asks the hub again about the credentials behind `owner`'s WebSockets (everyone's when `owner` is undefined)
   * and ends those that no longer resolve or no longer reach their server. A hub that cannot answer ends nothing.
   */
  recheck(owner: string | undefined): void {
    const sets = owner === undefined ? [...this.#byOwner.values()] : [this.#byOwner.get(owner) ?? new Set<Tracked>()];
    for (const set of sets) {
      for (const entry of set) {
        const { kind, credential, server } = entry.opened;
        this.ctx.lookup(kind, credential).then(
          (identity) => {
            if (identity === null || !reaches(identity, server)) this.#end(entry, 'its credential was revoked');
          },
          () => undefined,
        );
      }
    }
  }

  /** Forgets every WebSocket (the gateway is closing them all). */
  clear(): void {
    for (const set of this.#byOwner.values()) for (const entry of set) clearTimeout(entry.timer);
    this.#byOwner.clear();
  }

  #end(entry: Tracked, why: string): void {
    this.ctx.log.info({ user: entry.opened.identity.user, server: entry.opened.server, why }, 'ending a WebSocket');
    entry.client.destroy();
    entry.backend.destroy();
  }
}
