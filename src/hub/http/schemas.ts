// The zod schemas of the REST API: request bodies (validated at the boundary) and response models (checked in
// tests and published in the OpenAPI document). Field names are snake_case, as in JupyterHub.
import { z } from 'zod';
import { MAX_SCOPE_LENGTH, MAX_TOKEN_SCOPES } from '../auth/scopes.js';

/** Longest token lifetime `expires_in` accepts: 10 years, in seconds. */
export const MAX_TOKEN_LIFETIME_SECONDS = 10 * 366 * 24 * 3600;

export const errorSchema = z
  .object({
    status: z.number().int(),
    message: z.string(),
    field: z.string().optional(),
  })
  .meta({ id: 'Error', description: 'Every error from /hub/api; `field` names the one input at fault.' });

export const serverSchema = z
  .object({
    name: z.string(),
    ready: z.boolean(),
    pending: z.enum(['spawn', 'stop']).nullable(),
    stopped: z.boolean(),
    url: z.string(),
    progress_url: z.string(),
    started: z.string(),
    last_activity: z.string().nullable(),
    user_options: z.record(z.string(), z.unknown()),
    state: z.record(z.string(), z.unknown()),
    instance: z.string().nullable().describe('Pool field: the instance the server runs on.'),
    session_state: z.string().describe('Pool field: pending, starting, running, stopping, stopped or failed.'),
    queue_position: z.number().int().nullable().optional().describe('Pool field: place in the wait queue (1 = next) while waiting for room.'),
    notice: z.string().nullable().optional().describe('Pool field: a message for the user, e.g. that the instance is being drained, or that the idle server will be stopped.'),
    cull_at: z.string().nullable().optional().describe('Pool field: while an idle warning stands, when the server stops unless used or extended (ISO-8601).'),
    save_requested: z.boolean().optional().describe('Pool field: the server is stopping for idleness; open notebook pages save now.'),
  })
  .meta({ id: 'Server', description: "JupyterHub's server model plus pool fields." });

export const userSchema = z
  .object({
    kind: z.literal('user'),
    name: z.string(),
    admin: z.boolean(),
    groups: z.array(z.string()),
    roles: z.array(z.string()),
    server: z.string().nullable(),
    pending: z.enum(['spawn', 'stop']).nullable(),
    created: z.string(),
    last_activity: z.string().nullable(),
    servers: z.record(z.string(), serverSchema),
    auth_state: z.null(),
    uid: z.number().int().describe('Pool field: the UID (and GID) the user has on every instance.'),
    disabled: z.boolean().describe('Pool field.'),
    cull_exempt: z.boolean().describe('Pool field: an admin exempted the user from idle culling.'),
  })
  .meta({ id: 'User', description: "JupyterHub's user model plus pool fields." });

export const serviceSchema = z
  .object({ kind: z.literal('service'), name: z.string(), admin: z.boolean(), roles: z.array(z.string()) })
  .meta({ id: 'Service', description: 'The caller when it is the CLI\'s admin token.' });

/** What `GET /hub/api/user` adds about the credential itself (JupyterHub's RequestIdentity). */
const requestFields = {
  scopes: z.array(z.string()).describe('Expanded scopes of the credential, e.g. access:servers!user=alice.'),
  session_id: z.null(),
  token_id: z.string().nullable(),
};
export const requestIdentitySchema = z
  .union([userSchema.extend(requestFields), serviceSchema.extend(requestFields)])
  .meta({ id: 'RequestIdentity', description: "JupyterHub's RequestIdentity: the caller's model plus the credential's scopes." });

export const tokenSchema = z
  .object({
    id: z.string(),
    kind: z.literal('api_token'),
    token: z.string().optional().describe('Only in the response that created it.'),
    user: z.string(),
    roles: z.array(z.string()).describe('Always empty, as in JupyterHub 3+.'),
    note: z.string(),
    scopes: z.array(z.string()),
    created: z.string(),
    expires_at: z.string().nullable(),
    last_activity: z.string().nullable(),
    session_id: z.null(),
  })
  .meta({ id: 'Token', description: "JupyterHub's token model." });

export const tokenListSchema = z.object({ api_tokens: z.array(tokenSchema), oauth_tokens: z.array(z.unknown()) }).meta({ id: 'TokenList' });

/** One instance: the same model in the list and for one instance. */
export const instanceSchema = z
  .object({
    id: z.string(),
    state: z.string().describe('starting | ready | unhealthy | unreachable | draining | failed | stopping | deleted'),
    address: z.string().nullable(),
    sessions: z.number().int(),
    load: z.object({ cpu: z.number(), memory_used_bytes: z.number(), memory_total_bytes: z.number() }).nullable(),
    capacity: z
      .object({
        cpus: z.number(),
        memory_bytes: z.number(),
        gpus: z.array(z.number().int()).describe('GPU device indices sessions may be granted.'),
        max_sessions: z.number().int().nullable(),
      })
      .nullable()
      .describe('What the instance offers (pool.yaml overrides applied); null until its agent joined.'),
    gpu_devices: z.array(z.object({ index: z.number().int(), name: z.string(), memory_bytes: z.number() })),
    created: z.string(),
    last_heartbeat: z.string().nullable(),
    unreachable_since: z.string().nullable(),
    isolation: z.boolean().nullable(),
    ssh_port: z.number().int().nullable(),
    protected: z.boolean().describe('Never drained or removed by the pool (scale-in, drain).'),
    draining: z.boolean().describe('Takes no new sessions and goes once they end (also while its agent is unreachable).'),
    drain_deadline: z.string().nullable().describe('ISO-8601; set while draining with a deadline.'),
    detail: z.string().nullable().describe('Why it is unhealthy or what it waits for.'),
    provider: z.record(z.string(), z.union([z.string(), z.number()])).describe('Engine details (local: pid).'),
  })
  .meta({ id: 'Instance' });

export const eventSchema = z
  .object({
    id: z.number().int(),
    time: z.string(),
    kind: z.string(),
    user: z.string().nullable(),
    instance: z.string().nullable(),
    message: z.string(),
    data: z.record(z.string(), z.unknown()),
  })
  .meta({ id: 'Event' });

export const versionSchema = z.object({ version: z.string() }).meta({ id: 'Version' });
export const healthSchema = z.object({ status: z.literal('ok'), instances_ready: z.number().int() }).meta({ id: 'Health' });

export const createUserBody = z
  .strictObject({
    admin: z.boolean().optional(),
    password: z.string().min(1).max(1024).optional(),
  })
  .meta({ id: 'CreateUser' });

export const patchUserBody = z
  .strictObject({
    admin: z.boolean().optional(),
    password: z.string().min(1).max(1024).optional(),
    disabled: z.boolean().optional(),
    cull_exempt: z.boolean().optional().describe('Exempt the user from idle culling (or lift it).'),
  })
  .meta({ id: 'PatchUser' });

export const extendServerBody = z
  .strictObject({
    for: z
      .union([z.string(), z.number().positive()])
      .optional()
      .describe('How long to keep the server running whatever it does ("1h", "30m" or ms; at most 7 days); default 1h.'),
  })
  .meta({ id: 'ExtendServer' });

export const extendResultSchema = z
  .object({
    extended_until: z.string().describe('The server is not culled before this time (ISO-8601).'),
    cull_at: z.string().nullable().describe('A warning that still stands (the extension was shorter than the warning lead), or null.'),
  })
  .meta({ id: 'ExtendResult' });

export const createTokenBody = z
  .strictObject({
    note: z.string().max(1000, 'must be at most 1000 characters').optional(),
    scopes: z
      .array(z.string().min(1, 'must not be empty').max(MAX_SCOPE_LENGTH, `must be at most ${MAX_SCOPE_LENGTH} characters`))
      .max(MAX_TOKEN_SCOPES, `must hold at most ${MAX_TOKEN_SCOPES} scopes`)
      .optional()
      .describe('JupyterHub scopes, e.g. ["read:users!user=alice", "access:servers!user=alice"]; default ["inherit"] (all of the owner\'s).'),
    expires_in: z
      .number()
      .int('must be a whole number of seconds')
      .positive('must be positive')
      .max(MAX_TOKEN_LIFETIME_SECONDS, `must be at most ${MAX_TOKEN_LIFETIME_SECONDS} (10 years)`)
      .nullable()
      .optional()
      .describe('Lifetime in seconds; null = never expires.'),
  })
  .meta({ id: 'CreateToken' });

/** Query of `GET /hub/api/events`. */
export const eventsQuery = z.object({
  limit: z.coerce.number().int('must be a whole number').min(1, 'must be at least 1').max(1000, 'must be at most 1000').default(100),
  after: z.coerce.number().int('must be a whole number').min(0, 'must be 0 or more').max(Number.MAX_SAFE_INTEGER).default(0),
});

export const sshKeySchema = z
  .object({
    id: z.string(),
    algo: z.string(),
    fingerprint: z.string().describe('SHA256:…, as ssh-keygen -l prints it'),
    comment: z.string(),
    key: z.string().describe('the public key as one OpenSSH line'),
    created: z.string(),
  })
  .meta({ id: 'SshKey' });

export const addSshKeyBody = z
  .strictObject({ key: z.string().min(1).max(16_384).describe('an OpenSSH public key line, e.g. the contents of ~/.ssh/id_ed25519.pub') })
  .meta({ id: 'AddSshKey' });

export type ServerJson = z.infer<typeof serverSchema>;
export type UserJson = z.infer<typeof userSchema>;
export type TokenJson = z.infer<typeof tokenSchema>;
export type InstanceJson = z.infer<typeof instanceSchema>;
