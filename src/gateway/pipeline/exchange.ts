// One request or WebSocket upgrade travelling through the gateway's pipeline (the `Exchange`), what the pipeline
// needs from the gateway (`ProxyContext`), and step 0, which reads the few headers the steps look at.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import type { Dispatcher } from 'undici';
import { LOGIN_COOKIE, USER_HOST_COOKIE, type Identity } from '../../protocol/gateway.js';
import type { Logger } from '../../lib/log.js';
import type { CredentialKind } from '../auth-cache.js';
import type { GatewayErrorCode } from '../errors.js';
import type { ResolvedRoute } from '../hub-link.js';
import type { UserHostLayout } from './hosts.js';
import type { Backend } from '../upstream.js';
import type { RelayedServer } from '../relay.js';

/** What the pipeline needs from its surroundings (the gateway passes itself through this narrow view). */
export interface ProxyContext {
  readonly hub: Backend;
  readonly allowedOrigins: ReadonlySet<string>;
  readonly trustProxy: boolean;
  /** With `userHost`: where user hosts and the hub live; `undefined` serves every server on the hub's origin. */
  readonly userHost: UserHostLayout | undefined;
  /** The gateway secret (admin warning acknowledgements are HMACs with it). */
  readonly secret: string;
  /** Trades a user-host handshake code at the hub for that host's login cookie (`undefined`: refused). */
  redeemUserHostCode(code: string, user: string): Promise<string | undefined>;
  /** The signed `CLIENT_ADDRESS_HEADER` value for a client address (sent to the hub only). */
  signClientAddress(address: string): string;
  /** Pooled keep-alive connections for plain requests (see upstream.ts). */
  readonly upstream: Dispatcher;
  /** The pooled connections to `user`'s server behind its agent's TLS relay (see relay.ts). */
  relayDispatcher(user: string, server: RelayedServer): Dispatcher;
  readonly log: Logger;
  route(user: string): ResolvedRoute | undefined;
  cachedIdentity(kind: CredentialKind, value: string): Identity | null | undefined;
  lookup(kind: CredentialKind, value: string): Promise<Identity | null>;
  /** A person (not polling, not a reconnect) made a request to `user`'s server (for the hub's idle culler). */
  personRequest(user: string): void;
  /**
   * Called with both sockets of a WebSocket once it is piped, so `close()` can end it, and with the credential
   * that opened it (user's servers only), so a revoked or expired credential's WebSockets end too.
   */
  trackUpgrade(client: Duplex, backend: Socket, opened?: UpgradeCredential): void;
  /** Requests and upgrades seen, and those answered with a 5xx by the gateway or failed upstream (for metrics). */
  readonly counters: { requests: number; errors: number };
}

/** The credential a proxied WebSocket was opened with, and the server it reaches. */
export interface UpgradeCredential {
  readonly kind: CredentialKind;
  readonly credential: string;
  readonly identity: Identity;
  /** Whose server (`/user/<server>/`). */
  readonly server: string;
}

/** A response decided by a step instead of forwarding: an error or a redirect. */
export interface Reply {
  readonly status: number;
  readonly code: GatewayErrorCode | 'redirect';
  readonly message: string;
  readonly location?: string;
  /** A `Set-Cookie` header value to send with it. */
  readonly setCookie?: string;
}

/** `<login cookie name>=`, as it appears in a Cookie header. */
export const LOGIN_PREFIX = `${LOGIN_COOKIE}=`;
/** `<user host cookie name>=`. */
export const USER_HOST_PREFIX = `${USER_HOST_COOKIE}=`;
/** Where users' servers live. */
export const USER_PREFIX = '/user/';

/**
 * One request or WebSocket upgrade travelling through the pipeline; fields are filled in step by step.
 *
 * @example
 * const ex = new Exchange(ctx, req, res, undefined, undefined); // a plain request (an upgrade passes socket and head)
 * readHeaders(ex);
 * ex.browserGet; // true for a GET with Accept: text/html
 */
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
  /** With `userHost`: the user whose host this request came to (`alice.pool.example`); `''` on the hub's host. */
  hostUser = '';
  /** `Sec-Fetch-Mode`: `navigate` when a person opens or reloads a page. */
  fetchMode: string | undefined = undefined;
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
export type StepResult = Reply | undefined;

/**
 * Step 0: picks the headers the pipeline reads out of `rawHeaders` in one pass (no `req.headers` object).
 *
 * @example
 * readHeaders(ex);
 * ex.host; // 'pool.example:8000'
 * ex.cookie; // 'dspool-session=…; _xsrf=…' (several Cookie headers joined with '; ')
 */
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
      case 14:
        if (name.toLowerCase() === 'sec-fetch-mode') ex.fetchMode = value;
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
 * The value of one cookie (`prefix` is `name=`) in a Cookie header, or `undefined`.
 *
 * @example
 * readCookie('theme=dark; dspool-session=abc123', LOGIN_PREFIX); // 'abc123'
 * readCookie('xdspool-session=abc123', LOGIN_PREFIX); // undefined
 */
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
