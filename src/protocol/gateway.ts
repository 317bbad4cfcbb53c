// The hub ↔ gateway contract. The gateway dials the hub at `GATEWAY_PATH` with
// `Authorization: Bearer <gateway secret>` (the file `GATEWAY_SECRET_FILE` under dataDir, mode 0600).
// The hub pushes the routing table (a full `routes` snapshot on connect, then `route` / `unroute` changes) and
// answers the gateway's `auth` lookups. The gateway keeps the table and its auth cache in memory, so a hub
// restart drops no proxied connection: it reconnects and receives a fresh snapshot.
import { z } from 'zod';

export const GATEWAY_PATH = '/hub/internal/gateway';
/** Relative to dataDir. */
export const GATEWAY_SECRET_FILE = 'secrets/gateway.key';
/** Browser login cookie set by the hub and checked by the gateway. */
export const LOGIN_COOKIE = 'dspool-session';

/** Where one user's server is reachable. `token` is the server's secret, added by the gateway when proxying. */
export const routeSchema = z.strictObject({
  user: z.string(),
  sessionId: z.string(),
  instanceId: z.string(),
  /** e.g. `http://127.0.0.1:40123` (no path: requests keep theirs, `/user/<name>/…`). */
  target: z.string(),
  token: z.string(),
});
export type Route = z.infer<typeof routeSchema>;

/** Who a credential belongs to. */
export const identitySchema = z.strictObject({ user: z.string(), admin: z.boolean() });
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
    value: z.string(),
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
  z.strictObject({ method: z.literal('password'), user: z.string(), password: z.string() }),
  z.strictObject({ method: z.literal('publickey'), user: z.string(), algo: z.string(), key: z.string() }),
]);
export type SshAuthBody = z.infer<typeof sshAuthBody>;
/** Answer of `SSH_AUTH_PATH`. */
export const sshAuthResult = z.strictObject({ verdict: z.enum(['allowed', 'denied', 'unknown']) });

/** Body of `SSH_LOCATE_PATH`. */
export const sshLocateBody = z.strictObject({ user: z.string() });
/** One NDJSON line of the `SSH_LOCATE_PATH` answer: progress for the user, then the target or an error. */
export const locateLineSchema = z.union([
  z.strictObject({ progress: z.string() }),
  z.strictObject({ target: z.strictObject({ host: z.string(), port: z.number().int(), hostKey: z.string().optional() }) }),
  z.strictObject({ error: z.string() }),
]);
export type LocateLine = z.infer<typeof locateLineSchema>;
