// pool.yaml as one zod definition: validation, defaults and the published JSON Schema all come from here.
import { z } from 'zod';
import { parseSize } from '../lib/size.js';
import { duration } from './duration.js';
import { poolSchema } from './pool-schema.js';
import { shareSchema } from './share-schema.js';

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
    headersTimeout: duration('10s').describe('How long a client has to send a request\'s headers before it gets 408 and is closed (slowloris).'),
    idleTimeout: duration('65s').describe('How long a kept-alive connection may sit idle between requests.'),
    maxConnections: z
      .number()
      .int()
      .min(1)
      .max(1_000_000)
      .default(10_000)
      .describe('Most client connections (HTTP and WebSockets) open at once; one more gets 503.'),
    userHost: z
      .string()
      .regex(/^\{user\}\.[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/, 'write it as "{user}.<domain>", e.g. "{user}.pool.example"')
      .nullable()
      .default(null)
      .describe('Host name of each user\'s server, as JupyterHub\'s subdomain_host: "{user}.pool.example" serves alice\'s server at alice.pool.example (the hub stays at pool.example), so a user\'s server never runs on the hub\'s origin. null: every server is under /user/<name>/ on the hub\'s origin.'),
  })
  .prefault({});

export const hubSchema = z
  .strictObject({
    host: host.default('127.0.0.1').describe('Address of the hub\'s internal port, which agents dial.'),
    port: port.default(8081).describe('Internal port of the hub (agents and the gateway talk to it); 0 picks a free port.'),
    cookieMaxAge: duration('14d').describe('How long a browser login lasts.'),
    heartbeatInterval: duration('5s').describe('How often agents report their load.'),
    maxBodySize: z
      .union([z.string(), z.number()])
      .default('1Mi')
      .transform((value, ctx) => {
        const bytes = parseSize(value);
        if (bytes === undefined || bytes < 1024 || bytes > 2 ** 30) {
          ctx.addIssue({ code: 'custom', message: `"${value}" is not a size between 1Ki and 1Gi; write e.g. "1Mi"` });
          return z.NEVER;
        }
        return bytes;
      })
      .describe('Largest request body the hub reads (API and pages); a larger one gets 413.'),
    loginLimit: z
      .strictObject({
        window: duration('5m').describe('Window failed logins are counted over.'),
        perPair: z.number().int().min(1).max(1000).default(5).describe('Failed logins of one user name from one address within the window before that pair is refused unchecked.'),
        perAddress: z.number().int().min(1).max(100_000).default(30).describe('Failed logins from one address (any names; IPv6 by /64) within the window before the address is refused unchecked.'),
        maxConcurrent: z.number().int().min(1).max(64).nullable().default(null).describe('Password checks (argon2) running at once, web and SSH together; null: half the CPUs, at least 1.'),
        maxQueued: z.number().int().min(0).max(10_000).default(32).describe('Password checks waiting for a turn; beyond that a login is refused as busy.'),
        maxWait: duration('10s').describe('Longest a password check waits for its turn before the login is refused as busy.'),
      })
      .prefault({})
      .describe('Login guessing limits, shared by the web login and the SSH front door.'),
    agentAddress: z
      .string()
      .regex(/^(\[[0-9a-fA-F:]+\]|[^:\s]+):\d{1,5}$/, 'write host:port, e.g. "10.0.0.5:8082" (port 0 picks a free one)')
      .nullable()
      .default(null)
      .describe('Where the hub also listens for agents on other machines (host:port), only for agents and their join, with TLS (a self-signed certificate in dataDir, pinned by agents) unless privateNetwork; null: agents dial host:port above (local instances).'),
    privateNetwork: z
      .boolean()
      .default(false)
      .describe('The operator says the network between the hub, the gateway and the instances is private (a VPN, a cluster network): the agent listener and the gateway → Jupyter hop are then plain HTTP (no TLS, no relay; servers listen on the instance\'s address). false: both are TLS with pinned certificates.'),
  })
  .prefault({});

export const localProviderSchema = z.strictObject({
  type: z.literal('local'),
  scratchDir: z
    .string()
    .optional()
    .describe('Where each instance\'s local disk is created (deleted with the instance). Default: <dataDir>/instances.'),
});

/** Slurm's `--time` forms: minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM, D-HH:MM:SS, or UNLIMITED. */
const SLURM_TIME = /^(UNLIMITED|INFINITE|\d+(:\d{1,2}){0,2}|\d+-\d{1,2}(:\d{1,2}){0,2})$/;

export const slurmProviderSchema = z.strictObject({
  type: z.literal('slurm'),
  partition: z.string().min(1).nullable().default(null).describe('Partition the instances\' jobs run in (`sbatch --partition`); null: the cluster\'s default.'),
  account: z.string().min(1).nullable().default(null).describe('Account charged (`sbatch --account`); null: the submitter\'s default.'),
  timeLimit: z
    .string()
    .regex(SLURM_TIME, 'a Slurm time limit such as "8:00:00", "1-00:00:00", "90" (minutes) or "UNLIMITED"')
    .nullable()
    .default(null)
    .describe('Time limit of each instance\'s job (`sbatch --time`); a job that reaches it is a failed instance, replaced.'),
  gres: z.string().min(1).nullable().default(null).describe('Generic resources per job (`sbatch --gres`), e.g. "gpu:1".'),
  extraArgs: z.array(z.string().min(1)).default([]).describe('More sbatch arguments, e.g. ["--exclusive", "--mem=0"]. Never put secrets here.'),
  address: z
    .string()
    .min(1)
    .default('auto')
    .describe('Address the agent binds its servers to on its node; `auto`: the node\'s first non-loopback IPv4 address.'),
  scratchDir: z
    .string()
    .min(1)
    .default('/var/tmp/dspool')
    .describe('Node-local directory under which each job makes its instance\'s disk (`<scratchDir>/<id>`), removed when the job ends.'),
  node: z.string().min(1).nullable().default(null).describe('Node.js on the compute nodes; null: the same path as the hub\'s.'),
  agentEntry: z.string().min(1).nullable().default(null).describe('dspool\'s `dist/agent/main.js` on the compute nodes; null: the hub\'s own copy (a shared install).'),
  slurmConf: z.string().min(1).nullable().default(null).describe('slurm.conf for the Slurm commands the hub runs (`SLURM_CONF`); null: Slurm\'s default.'),
  pollInterval: duration('10s').describe('How often the hub asks Slurm (squeue) whether the instances\' jobs still run; doubled while the controller does not answer, up to 5 minutes.'),
});

export const staticProviderSchema = z.strictObject({
  type: z.literal('static'),
  hosts: z
    .array(z.string().min(1))
    .min(1, 'name at least one machine')
    .describe('Addresses of the existing machines that may join (as the hub sees them connect); the pool has one instance per host.'),
});

export const providerSchema = z
  .discriminatedUnion('type', [localProviderSchema, slurmProviderSchema, staticProviderSchema])
  .default({ type: 'local' })
  .describe('The engine that creates instances. `local` runs each instance as an agent process on this machine; `slurm` as a Slurm job; `static` joins existing machines (`dspool instances join-command`).');

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
    forkServer: z
      .boolean()
      .default(true)
      .describe(
        'Start servers and their Python kernels by forking a pre-imported /usr/bin/python3 on each instance (about 1 s ' +
          'less per start); false: exec them every time. A server command other than notebook 6 is always exec\'d.',
      ),
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
    passwordMinLength: z
      .number()
      .int()
      .min(1)
      .max(1024)
      .default(8)
      .describe('Shortest password accepted when a user is added or a password set, in characters (the most common passwords are refused whatever their length).'),
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
  share: shareSchema,
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
export type SlurmProviderConfig = z.output<typeof slurmProviderSchema>;
export type { ShareMountConfig } from './share-schema.js';
export type StaticProviderConfig = z.output<typeof staticProviderSchema>;
