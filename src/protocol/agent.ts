// The hub ↔ agent contract: every message either side sends over the agent's WebSocket, typed once here.
//
// The agent dials the hub at `AGENT_PATH` with `Authorization: Bearer <join token>` and the header
// `X-Dspool-Instance: <instance id>`. Frames are JSON text, one message each. The agent speaks first (`hello`),
// the hub answers `welcome`, then the agent sends a `heartbeat` every `heartbeatIntervalMs`. The hub sends
// `request`s; the agent answers each with one `reply` carrying the same `id`, and may send `progress` for a
// request still running. When a server exits on its own the agent sends `serverExited`.
import { z } from 'zod';

/** WebSocket path on the hub's internal port that agents dial. */
export const AGENT_PATH = '/hub/internal/agent';
/** Header carrying the instance id (the join token goes in `Authorization: Bearer`). */
export const INSTANCE_HEADER = 'x-dspool-instance';
/** Environment variables the provider sets for an agent; the join token is never put on a command line. */
export const AGENT_ENV = {
  hubUrl: 'DSPOOL_HUB_URL',
  instanceId: 'DSPOOL_INSTANCE_ID',
  joinToken: 'DSPOOL_JOIN_TOKEN',
  /** JSON of `AgentSettings`. */
  settings: 'DSPOOL_AGENT_SETTINGS',
} as const;

/**
 * How the agent mounts the share (pool.yaml `share.mount`, durations in ms). Credentials are never in here: only the
 * paths of root-only files on the instance's machine.
 */
export const shareMountSettingsSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('nfs'), source: z.string(), options: z.array(z.string()), timeoutMs: z.number().int().positive() }),
  z.strictObject({
    type: z.literal('cifs'), source: z.string(), credentialsFile: z.string().optional(), options: z.array(z.string()), timeoutMs: z.number().int().positive(),
  }),
  z.strictObject({
    type: z.literal('sshfs'), source: z.string(), port: z.number().int(), identityFile: z.string(), hostKey: z.string(), options: z.array(z.string()),
    timeoutMs: z.number().int().positive(),
  }),
  z.strictObject({
    type: z.literal('command'), command: z.array(z.string()).min(1), source: z.string().optional(), credentialsFile: z.string().optional(),
    options: z.array(z.string()), timeoutMs: z.number().int().positive(),
  }),
]);
export type ShareMountSettings = z.infer<typeof shareMountSettingsSchema>;

/** What the agent needs to know besides hub, id and token; passed by the provider as JSON in `AGENT_ENV.settings`. */
export const agentSettingsSchema = z.strictObject({
  /** Address the instance's servers bind to and the gateway reaches them on. */
  address: z.string(),
  /** The instance's own disk: what must stay off the share (users' runtime files, caches, IPython) and server logs. */
  scratchDir: z.string(),
  /**
   * A short per-instance directory on the instance's own disk for users' runtime dirs (kernel IPC sockets, whose
   * paths must fit in ~107 bytes); absent: `<scratchDir>/local/<name>/runtime`.
   */
  runtimeDir: z.string().optional(),
  /** The pool's team group (pool.yaml `users.teamGroup`/`teamGid`): every account is a member, `<share>/team` is theirs; absent: none. */
  team: z.strictObject({ name: z.string(), gid: z.number().int().positive() }).optional(),
  /**
   * `sha256:<hex>` of the hub's TLS certificate when the agent dials an `https:` hub URL (hub.agentAddress without
   * hub.privateNetwork): the agent pins it and sends nothing to a hub presenting another. Absent: a plain hub URL.
   */
  hubFingerprint: z.string().optional(),
  /**
   * Users' servers listen on the instance's loopback and the gateway reaches them through the agent's TLS relay
   * (see relay.ts): set for instances on other machines unless hub.privateNetwork. Absent: false (servers listen
   * on `address`).
   */
  relay: z.boolean().optional(),
  /** The shared drive as seen on this instance: users' `$HOME`s and notebooks live here. */
  sharePath: z.string(),
  /**
   * Mount the share at `sharePath` (at start, and again when it goes stale), and probe it every `intervalMs` (write,
   * fsync, read back, delete; at most `timeoutMs`); absent: the operator mounts it, checked once at `hello`.
   */
  shareMount: z.strictObject({ mount: shareMountSettingsSchema, probeIntervalMs: z.number().int().positive(), probeTimeoutMs: z.number().int().positive() }).optional(),
  jupyter: z.strictObject({
    command: z.array(z.string()).min(1),
    args: z.array(z.string()),
    startTimeoutMs: z.number().int().positive(),
    path: z.string(),
    /** Fork servers and kernels from the instance's pre-imported fork server; absent: true. */
    forkServer: z.boolean().optional(),
  }),
  logLevel: z.string(),
  /**
   * Instance-side SSH server (the hop behind the gateway's SSH front door): it accepts only the pool-internal
   * key. `null` turns it off.
   */
  ssh: z.strictObject({ internalPublicKey: z.string() }).nullable(),
  /** nvidia-smi used to detect GPUs (a path or a name on `jupyter.path`); null or absent: no detection. */
  gpuCommand: z.string().nullable().optional(),
  /**
   * The pool's users with their hub-assigned IDs when the instance was made: an instance whose /etc/passwd gives
   * one of these UIDs (or GIDs) to another name is not ready (the accounts of that machine clash with the pool's).
   */
  knownUsers: z.array(z.strictObject({ name: z.string(), uid: z.number().int(), gid: z.number().int() })).optional(),
});
export type AgentSettings = z.infer<typeof agentSettingsSchema>;

/** A pool user as the agent needs them: the account is created with exactly this UID/GID. */
export const agentUserSchema = z.strictObject({
  name: z.string(),
  uid: z.number().int().nonnegative(),
  gid: z.number().int().nonnegative(),
});
export type AgentUser = z.infer<typeof agentUserSchema>;

/** One GPU the agent found (`nvidia-smi --query-gpu=index,name,memory.total`). */
export const gpuDeviceSchema = z.strictObject({
  /** nvidia-smi's index: what `CUDA_VISIBLE_DEVICES` names. */
  index: z.number().int().nonnegative(),
  name: z.string(),
  memoryBytes: z.number().nonnegative(),
});
export type GpuDevice = z.infer<typeof gpuDeviceSchema>;

export const capacitySchema = z.strictObject({
  cpus: z.number().nonnegative(),
  memoryBytes: z.number().nonnegative(),
  gpus: z.number().int().nonnegative(),
  /** The GPUs counted in `gpus`, when the agent detected them. */
  gpuDevices: z.array(gpuDeviceSchema).optional(),
});
export type Capacity = z.infer<typeof capacitySchema>;

export const loadSchema = z.strictObject({
  /** 1-minute load average divided by cores (1 = all cores busy). */
  cpu: z.number().nonnegative(),
  memoryUsedBytes: z.number().nonnegative(),
  memoryTotalBytes: z.number().nonnegative(),
});
export type Load = z.infer<typeof loadSchema>;

/** What the hub reserved for one session; `gpus` are device indices (`CUDA_VISIBLE_DEVICES`). */
export const sessionResourcesSchema = z.strictObject({
  cpu: z.number().nonnegative(),
  memoryBytes: z.number().nonnegative(),
  gpus: z.array(z.number().int().nonnegative()),
  /** Most processes and threads at once (the session cgroup's pids limit); absent: the agent's `sessionPidsMax`. */
  pids: z.number().int().nonnegative().optional(),
});
export type SessionResources = z.infer<typeof sessionResourcesSchema>;

/** States of one user server as the agent sees it. */
export const agentServerStateSchema = z.enum(['starting', 'running', 'stopping']);

/**
 * What a session is doing, as the agent sees it (idle means "no work", never "no traffic"): kernels executing code
 * a person sent, terminals and SSH sessions running a foreground job, and the last moment of such work or input.
 */
export const serverWorkSchema = z.strictObject({
  /** Kernels executing now. */
  kernelsExecuting: z.number().int().nonnegative(),
  /**
   * Jupyter terminals and SSH ptys whose foreground process is not the shell, and SSH commands running that are
   * not a bare shell fed on stdin (VS Code Remote-SSH's agent is one; it only counts its input).
   */
  foreground: z.number().int().nonnegative(),
  /** Last moment of work: a kernel executing, keyboard input on a terminal or SSH session (ISO-8601). */
  lastWork: z.string().optional(),
});
export type ServerWork = z.infer<typeof serverWorkSchema>;

/** A server the agent runs, reported in `hello` and every `heartbeat` so the hub can re-adopt after a restart. */
export const serverReportSchema = z.strictObject({
  sessionId: z.string(),
  user: z.string(),
  state: agentServerStateSchema,
  /** Where the gateway reaches it, e.g. `http://127.0.0.1:40123`, or behind the relay a `dspool-relay:` URL (relay.ts). */
  url: z.string(),
  pid: z.number().int().optional(),
  startedAt: z.string(),
  /** Last time the server reported activity (kernel execution, terminal input), ISO-8601. */
  lastActivity: z.string().optional(),
  /** What the hub reserved for it (`startServer.resources`), so a restarted hub re-reserves the same GPUs. */
  resources: sessionResourcesSchema.optional(),
  /** Work in the session (kernels, terminals, SSH), for the hub's idle culler. */
  work: serverWorkSchema.optional(),
});
export type ServerReport = z.infer<typeof serverReportSchema>;

/** The instance's health checks: all true, the instance can take sessions; `detail` says what failed. */
export const checksSchema = z.strictObject({
  share: z.boolean(),
  jupyter: z.boolean(),
  /** False when this machine's accounts clash with the pool's UIDs/GIDs (absent: not checked). */
  identity: z.boolean().optional(),
  detail: z.string().optional(),
});
export type Checks = z.infer<typeof checksSchema>;

export const helloSchema = z.strictObject({
  type: z.literal('hello'),
  instanceId: z.string(),
  version: z.string(),
  address: z.string(),
  capacity: capacitySchema,
  /** True when servers run as the user's own account (agent runs as root). */
  isolation: z.boolean(),
  /** Share mounted and writable, Jupyter command found: the instance can take sessions. */
  checks: checksSchema,
  /** Port of the instance-side SSH server on `address`, or null when it is off. */
  sshPort: z.number().int().nullable(),
  /** That server's public host key (`ssh-ed25519 AAAA…`), pinned by the gateway on the hop. */
  sshHostKey: z.string().optional(),
  servers: z.array(serverReportSchema),
});

export const heartbeatSchema = z.strictObject({
  type: z.literal('heartbeat'),
  load: loadSchema,
  servers: z.array(serverReportSchema),
  /** The checks again when they can change after `hello` (a mounted share probed periodically); absent: unchanged. */
  checks: checksSchema.optional(),
});

/** A failed request: `code` is stable (see `AgentErrorCode`), `message` is for people. */
export const agentErrorSchema = z.strictObject({ code: z.string(), message: z.string() });
export type AgentErrorBody = z.infer<typeof agentErrorSchema>;

export const replySchema = z.discriminatedUnion('ok', [
  z.strictObject({ type: z.literal('reply'), id: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.strictObject({ type: z.literal('reply'), id: z.number().int(), ok: z.literal(false), error: agentErrorSchema }),
]);

export const progressSchema = z.strictObject({
  type: z.literal('progress'),
  sessionId: z.string(),
  /** 0–100. */
  percent: z.number().min(0).max(100),
  message: z.string(),
  /** A start step whose time the hub records in its progress events: `forked` or `exec` (the server process exists). */
  phase: z.string().max(32).optional(),
});

export const serverExitedSchema = z.strictObject({
  type: z.literal('serverExited'),
  sessionId: z.string(),
  code: z.number().int().nullable(),
  signal: z.string().nullable(),
  /** Last lines the server printed (secrets redacted), to explain a failed start. */
  detail: z.string().optional(),
});

export const agentMessageSchema = z.discriminatedUnion('type', [
  helloSchema,
  heartbeatSchema,
  replySchema,
  progressSchema,
  serverExitedSchema,
]);
export type AgentMessage = z.infer<typeof agentMessageSchema>;
export type HelloMessage = z.infer<typeof helloSchema>;
export type HeartbeatMessage = z.infer<typeof heartbeatSchema>;
export type ProgressMessage = z.infer<typeof progressSchema>;
export type ServerExitedMessage = z.infer<typeof serverExitedSchema>;

/** Parameters of `startServer`: start one user's Jupyter server. `token` is the server's secret. */
export const startServerParamsSchema = z.strictObject({
  sessionId: z.string(),
  user: agentUserSchema,
  /** URL prefix the server is mounted under, e.g. `/user/alice/`. */
  baseUrl: z.string(),
  /** Secret the gateway presents to the server; handed to Jupyter through its environment only. */
  token: z.string().min(16),
  /**
   * What the hub reserved for this session. `gpus` are device indices: the server sees only those
   * (`CUDA_VISIBLE_DEVICES`; an empty list hides every GPU). Absent: no reservation, nothing hidden.
   */
  resources: sessionResourcesSchema.optional(),
});
export type StartServerParams = z.infer<typeof startServerParamsSchema>;
export const startServerResultSchema = z.strictObject({ url: z.string(), pid: z.number().int() });
export type StartServerResult = z.infer<typeof startServerResultSchema>;

export const stopServerParamsSchema = z.strictObject({ sessionId: z.string() });

export const notifyParamsSchema = z.strictObject({ user: z.string(), message: z.string().min(1).max(500) });
export type NotifyParams = z.infer<typeof notifyParamsSchema>;
export type StopServerParams = z.infer<typeof stopServerParamsSchema>;

/** Methods the hub can call on an agent, with their params and results. */
export interface AgentMethods {
  startServer: { params: StartServerParams; result: StartServerResult };
  stopServer: { params: StopServerParams; result: { stopped: boolean } };
  /** Show a notice to a user on this instance (their interactive SSH terminals); e.g. "this instance is draining". */
  notify: { params: NotifyParams; result: { delivered: number } };
  /** Stop every server and exit; the reply is sent before the process exits. */
  shutdown: { params: Record<string, never>; result: { stopped: number } };
}
export type AgentMethod = keyof AgentMethods;

export const hubMessageSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('welcome'), heartbeatIntervalMs: z.number().int().positive() }),
  z.strictObject({
    type: z.literal('request'),
    id: z.number().int(),
    method: z.enum(['startServer', 'stopServer', 'notify', 'shutdown']),
    params: z.unknown(),
  }),
]);
export type HubMessage = z.infer<typeof hubMessageSchema>;

/** Stable codes an agent puts in a failed `reply`. */
export const AgentErrorCode = {
  badRequest: 'bad_request',
  jupyterMissing: 'jupyter_missing',
  startFailed: 'server_start_failed',
  startTimeout: 'server_start_timeout',
  accountFailed: 'account_failed',
  shareUnavailable: 'share_unavailable',
  unknownSession: 'unknown_session',
  internal: 'internal',
} as const;
export type AgentErrorCode = (typeof AgentErrorCode)[keyof typeof AgentErrorCode];

/** Where a joining machine exchanges a one-use join token (or its host credential) for an instance (POST, JSON). */
export const JOIN_PATH = '/hub/internal/join';

/** Body of `POST JOIN_PATH`: the one-use join token the first time, the host credential it got back afterwards. */
export const joinRequestSchema = z.union([
  z.strictObject({ token: z.string().min(16) }),
  z.strictObject({ hostCredential: z.string().min(16) }),
]);
export type JoinRequest = z.infer<typeof joinRequestSchema>;

/** Answer of `POST JOIN_PATH`: the instance this machine now is, and (after a token) its long-lived host credential. */
export const joinResponseSchema = z.strictObject({
  /** Present only in exchange for a join token; kept by the agent in a root-only file, never shown again. */
  hostCredential: z.string().optional(),
  instanceId: z.string(),
  /** The instance's own credential (what `AGENT_ENV.joinToken` carries for other providers). */
  instanceToken: z.string(),
  /** Address the agent binds its servers to (this machine's, as the hub sees it). */
  address: z.string(),
  settings: agentSettingsSchema.omit({ address: true, scratchDir: true }),
});
export type JoinResponse = z.infer<typeof joinResponseSchema>;

/** Stable codes of a refused join (`{ code, message }`, HTTP 4xx). */
export const JoinErrorCode = {
  badRequest: 'bad_request',
  tokenInvalid: 'join_token_invalid',
  hostCredentialInvalid: 'host_credential_invalid',
  hostNotListed: 'host_not_listed',
  noFreeInstance: 'no_free_instance',
  notSupported: 'join_not_supported',
} as const;
