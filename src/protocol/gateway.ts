// The hub ↔ gateway contract. The gateway dials the hub at `GATEWAY_PATH` with
// `Authorization: Bearer <gateway secret>` (the file `GATEWAY_SECRET_FILE` under dataDir, mode 0600).
// The hub pushes the routing table (a full `routes` snapshot on connect, then `route` / `unroute` changes) and
// answers the gateway's `auth` lookups. The gateway keeps the table and its auth cache in memory, so a hub
// restart drops no proxied connection: it reconnects and receives a fresh snapshot.
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { sameSecret } from '../lib/secret.js';

export const GATEWAY_PATH = '/hub/internal/gateway';
/** Relative to dataDir. */
export const GATEWAY_SECRET_FILE = 'secrets/gateway.key';
/** Browser login cookie set by the hub and checked by the gateway. */
export const LOGIN_COOKIE = 'dspool-session';
/**
 * Set by the hub (path `/user/<name>/`) once an admin has read the warning about opening another user's server on
 * the hub's origin; its value is {@link adminAck}, so only the gateway and the hub can make one.
 */
export const ACK_COOKIE = 'dspool-ack';
/**
 * With `gateway.userHost`: the login cookie of one user host (`alice.pool.example`), host-only, set by the gateway
 * at the end of the handshake; the hub's own login cookie never reaches a user host.
 */
export const USER_HOST_COOKIE = 'dspool-host-session';
/** On the hub's host: where a user host sends a browser without a login (`?user=&next=`). */
export const USER_HOST_AUTHORIZE_PATH = '/hub/user-host/authorize';
/** On a user host: where the hub sends the browser back with a one-time code (`?code=&next=`); the gateway answers it. */
export const USER_HOST_CALLBACK_PATH = '/hub/user-host/callback';
/** Internal route the gateway trades a code at (`Authorization: Bearer <gateway secret>`). */
export const USER_HOST_REDEEM_PATH = '/hub/internal/user-host/redeem';
/** Body of `USER_HOST_REDEEM_PATH`: the code and the user host it arrived at. */
export const userHostRedeemBody = z.strictObject({ code: z.string().min(1).max(200), user: z.string().max(64) });
/** Answer of `USER_HOST_REDEEM_PATH`: the new cookie, or null when the code is unknown, used, expired or for another host. */
export const userHostRedeemResult = z.strictObject({ cookie: z.string().nullable() });

/**
 * The value of {@link ACK_COOKIE} for the admin holding `loginCookie` opening `user`'s server.
 *
 * @example
 * adminAck(secret, 'mallory', cookie); // base64url HMAC
 */
export function adminAck(secret: string, user: string, loginCookie: string): string {
  return createHmac('sha256', secret).update(`admin-ack:${user}:${loginCookie}`).digest('base64url');
}

/** Where one user's server is reachable. `token` is the server's secret, added by the gateway when proxying. */
export const routeSchema = z.strictObject({
  user: z.string(),
  sessionId: z.string(),
  instanceId: z.string(),
  /**
   * e.g. `http://127.0.0.1:40123` (no path: requests keep theirs, `/user/<name>/…`), or a server behind its agent's
   * TLS relay: `dspool-relay://<address>:<relay port>/<server port>?fingerprint=sha256:<hex>` (relay.ts).
   */
  target: z.string(),
  token: z.string(),
});
export type Route = z.infer<typeof routeSchema>;

/** Who a credential belongs to, and what the gateway needs to know about what it may do. */
export const identitySchema = z.strictObject({
  user: z.string(),
  admin: z.boolean(),
  /**
   * Whose servers the credential may open at `/user/<name>/` (its `access:servers` scope): `'*'` for everyone's,
   * else the user names. Absent: the owner's own server, and everyone's for an admin (a credential holding all of
   * its owner's scopes, like a login cookie).
   */
  servers: z.union([z.literal('*'), z.array(z.string()).max(100_000)]).optional(),
  /** When the credential stops being valid (a token's `expires_at`, a login's end), ms since the epoch; never cached past it. */
  expiresAtMs: z.number().int().nonnegative().optional(),
});
export type Identity = z.infer<typeof identitySchema>;

export const hubToGatewaySchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('routes'), routes: z.array(routeSchema) }),
  z.strictObject({ type: z.literal('route'), route: routeSchema }),
  z.strictObject({ type: z.literal('unroute'), user: z.string(), sessionId: z.string() }),
  /** Forget cached identities: all of them, or one user's (logout, token deleted, user removed). */
  z.strictObject({ type: z.literal('revoke'), user: z.string().optional() }),
  z.strictObject({ type: z.literal('authResult'), id: z.number().int(), identity: identitySchema.nullable() }),
]);
export type HubToGateway = z.infer<typeof hubToGatewaySchema>;

export const gatewayToHubSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('auth'),
    id: z.number().int(),
    kind: z.enum(['cookie', 'token']),
    value: z.string().max(4096),
  }),
  /** Counters since the gateway started (sent every few seconds), for the hub's /hub/metrics. */
  z.strictObject({
    type: z.literal('stats'),
    requests: z.number().int().nonnegative(),
    errors: z.number().int().nonnegative(),
    websockets: z.number().int().nonnegative(),
  }),
  /**
   * Users whose server a person made requests to (not polling, not reconnects), with the time of the last one
   * (ISO-8601), for the idle culler. Sent at most once a second.
   */
  z.strictObject({ type: z.literal('activity'), users: z.record(z.string(), z.string()) }),
]);
export type GatewayToHub = z.infer<typeof gatewayToHubSchema>;
export type GatewayStats = Omit<Extract<GatewayToHub, { type: 'stats' }>, 'type'>;

/** Internal HTTP routes the SSH front door calls on the hub, with `Authorization: Bearer <gateway secret>`. */
export const SSH_AUTH_PATH = '/hub/internal/ssh/auth';
export const SSH_LOCATE_PATH = '/hub/internal/ssh/locate';

/** Body of `SSH_AUTH_PATH`: a password, or a public key in wire form (base64). */
export const sshAuthBody = z.discriminatedUnion('method', [
  /** `address`: the SSH client's address, for the hub's login limits (per user and address, per address). */
  z.strictObject({ method: z.literal('password'), user: z.string().max(64), password: z.string().max(4096), address: z.string().max(64) }),
  z.strictObject({ method: z.literal('publickey'), user: z.string().max(64), algo: z.string().max(64), key: z.string().max(16_384) }),
]);
export type SshAuthBody = z.infer<typeof sshAuthBody>;
/** Answer of `SSH_AUTH_PATH`. */
export const sshAuthResult = z.strictObject({
  /** `limited`: too many recent failures from this user and address (or this address); `busy`: too many checks waiting. */
  verdict: z.enum(['allowed', 'denied', 'unknown', 'limited', 'busy']),
  /** With `limited`: milliseconds until an attempt is checked again. */
  retryAfterMs: z.number().int().nonnegative().optional(),
});

/**
 * Body of `SSH_LOCATE_PATH`. `interactive`: absent while the front door does not know yet what the connection
 * wants (at login); `true` once one of its channels asked for a terminal (an interactive login, `ssh -t`).
 */
export const sshLocateBody = z.strictObject({ user: z.string().max(64), interactive: z.boolean().optional() });
/**
 * One NDJSON line of the `SSH_LOCATE_PATH` answer: progress for the user, then the target, an error, or `held`:
 * the user has no server because the pool stopped it (idle, a drain deadline), and only an interactive login
 * starts it again — the line is what to tell a connection that is not one (an editor reconnecting on its own).
 */
export const locateLineSchema = z.union([
  z.strictObject({ progress: z.string() }),
  z.strictObject({ target: z.strictObject({ host: z.string(), port: z.number().int(), hostKey: z.string().optional() }) }),
  z.strictObject({ error: z.string() }),
  z.strictObject({ held: z.string() }),
]);
export type LocateLine = z.infer<typeof locateLineSchema>;

/**
 * Header the gateway puts on every request it forwards to the hub: the client's address and an HMAC of it with
 * the gateway secret, so the hub's login limits count the real client and nobody else can claim an address.
 */
export const CLIENT_ADDRESS_HEADER = 'x-dspool-client';

function addressMac(secret: string, address: string): string {
  return createHmac('sha256', secret).update(`client-address:${address}`).digest('base64url');
}

/**
 * The value of {@link CLIENT_ADDRESS_HEADER} for `address`.
 *
 * @example
 * headers.push(CLIENT_ADDRESS_HEADER, signClientAddress(secret, req.socket.remoteAddress ?? ''));
 */
export function signClientAddress(secret: string, address: string): string {
  return `${address} ${addressMac(secret, address)}`;
}

/**
 * The address in a {@link CLIENT_ADDRESS_HEADER} value, or `undefined` when it is missing or not signed with
 * `secret`.
 *
 * @example
 * verifyClientAddress(secret, signClientAddress(secret, '10.0.0.5')); // '10.0.0.5'
 */
export function verifyClientAddress(secret: string, value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const space = value.lastIndexOf(' ');
  if (space <= 0) return undefined;
  const address = value.slice(0, space);
  return sameSecret(value.slice(space + 1), addressMac(secret, address)) ? address : undefined;
}
