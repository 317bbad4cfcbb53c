// pool.yaml as one zod definition: validation, defaults and the published JSON Schema all come from here.
import { z } from 'zod';
import { duration } from './duration.js';
import { poolSchema } from './pool-schema.js';

export { poolSchema };

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);

export const gatewaySchema = z
  .strictObject({
    host: host.default('127.0.0.1').describe('Address the front door listens on (HTTP and SSH).'),
    port: port.default(8000).describe('HTTP port of the front door; 0 picks a free port.'),
    sshPort: port.nullable().default(2222).describe('SSH port of the front door; 0 picks a free port, null turns SSH off.'),
    allowedOrigins: z
      .array(z.string().url())
      .default([])
      .describe('Extra browser origins allowed to send cookie-authenticated requests (the gateway\'s own origin always is).'),
  })
  .prefault({});

export const hubSchema = z
  .strictObject({
    host: host.default('127.0.0.1').describe('Address of the hub\'s internal port, which agents dial.'),
    port: port.default(8081).describe('Internal port of the hub (agents and the gateway talk to it); 0 picks a free port.'),
    cookieMaxAge: duration('14d').describe('How long a browser login lasts.'),
    heartbeatInterval: duration('5s').describe('How often agents report their load.'),
  })
  .prefault({});

export const localProviderSchema = z.strictObject({
  type: z.literal('local'),
  scratchDir: z
    .string()
    .optional()
    .describe('Where each instance\'s local disk is created (deleted with the instance). Default: <dataDir>/instances.'),
});

export const providerSchema = z
  .discriminatedUnion('type', [localProviderSchema])
  .default({ type: 'local' })
  .describe('The engine that creates instances. `local` runs each instance as an agent process on this machine.');

export const jupyterSchema = z
  .strictObject({
    command: z
      .array(z.string().min(1))
      .min(1)
      .default(['/usr/bin/jupyter-notebook'])
      .describe('Command that starts one user\'s Jupyter server (notebook 6 flags are added after it).'),
    args: z.array(z.string()).default([]).describe('Extra arguments appended to the server command.'),
    startTimeout: duration('60s').describe('How long a server may take to answer before its start fails.'),
    path: z
      .string()
      .default('/usr/bin:/usr/local/bin:/bin:/usr/sbin:/sbin')
      .describe('PATH given to Jupyter servers and kernels (Debian\'s Python first, so kernels find ipykernel).'),
  })
  .prefault({});

export const usersSchema = z
  .strictObject({
    uidBase: z
      .number()
      .int()
      .min(1000)
      .max(2_000_000_000)
      .default(20000)
      .describe('First UID (and GID) the hub assigns; each user keeps theirs on every instance.'),
    teamGroup: z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,31}$/, 'must be a lowercase Unix group name')
      .default('dspool-team')
      .describe('Name of the pool\'s team group: every pool account is a member and `<share>/team` belongs to it.'),
    teamGid: z
      .number()
      .int()
      .min(1000)
      .optional()
      .describe('GID of the team group (every account is a member; `<share>/team` is theirs). Default: `uidBase - 1`.'),
  })
  .refine((users) => users.teamGid === undefined || users.teamGid < users.uidBase, {
    path: ['teamGid'],
    message: 'must be below users.uidBase (user IDs count up from there)',
  })
  .transform((users) => ({ ...users, teamGid: users.teamGid ?? users.uidBase - 1 }))
  .prefault({});

export const logSchema = z
  .strictObject({
    level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  })
  .prefault({});

/** The whole pool.yaml. Relative paths are resolved against the file's own directory by `loadConfig`. */
export const poolConfigSchema = z.strictObject({
  dataDir: z.string().min(1).default('./state').describe('Where the hub keeps its store, secrets and runtime files.'),
  share: z
    .strictObject({
      path: z.string().min(1).describe('The shared drive every instance sees; users\' notebooks live under users/<name>/notebooks.'),
    })
    .describe('The shared drive.'),
  gateway: gatewaySchema,
  hub: hubSchema,
  provider: providerSchema,
  pool: poolSchema,
  jupyter: jupyterSchema,
  users: usersSchema,
  log: logSchema,
});

/** pool.yaml as written by a user (before defaults). */
export type PoolConfigInput = z.input<typeof poolConfigSchema>;
/** pool.yaml with every default filled in and durations in milliseconds. */
export type PoolConfig = z.output<typeof poolConfigSchema>;
export type ProviderConfig = PoolConfig['provider'];
export type LocalProviderConfig = z.output<typeof localProviderSchema>;
