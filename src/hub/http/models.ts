// JSON models in JupyterHub's shape (snake_case), with pool fields beside them.
import type { SessionRecord, TokenRecord, UserRecord } from '../store/types.js';
import type { InstanceView } from '../instances/pool.js';
import { userPrefix } from '../sessions/manager.js';
import type { InstanceJson, ServerJson, TokenJson, UserJson } from './schemas.js';

/** A session as JupyterHub's server model. */
/** Pool facts about a live session that its record does not hold (`SessionManager.poolFieldsOf`). */
export interface SessionPoolFields {
  readonly queuePosition: number | null;
  readonly notice: string | null;
  /** While the idle culler's warning stands: when the server stops unless used (ISO-8601). */
  readonly cullAt: string | null;
  /** The server is being stopped for idleness: open pages should save now. */
  readonly saveRequested: boolean;
}

/**
 * A session as JupyterHub's server model; `pool` adds the pool's own fields (queue position, notice, cull time).
 *
 * @example
 * serverModel(session).pending; // 'spawn' while pending or starting, 'stop' while stopping, else null
 * serverModel(session).url; // '/user/alice/'
 */
export function serverModel(session: SessionRecord, pool?: SessionPoolFields): ServerJson {
  const pending = session.state === 'pending' || session.state === 'starting' ? 'spawn' : session.state === 'stopping' ? 'stop' : null;
  return {
    name: session.name,
    ready: session.state === 'running',
    pending,
    stopped: session.state === 'stopped' || session.state === 'failed',
    url: userPrefix(session.user),
    progress_url: `/hub/api/users/${session.user}/server/progress`,
    started: session.started,
    last_activity: session.lastActivity,
    user_options: {},
    state: {},
    instance: session.instanceId,
    session_state: session.state,
    ...(pool ? { queue_position: pool.queuePosition, notice: pool.notice, cull_at: pool.cullAt, save_requested: pool.saveRequested } : {}),
  };
}

/**
 * A user as JupyterHub's user model; `servers` holds the active server, if any.
 *
 * @example
 * userModel(user, sessions.active(user.name)).servers; // { '': { ready: true, url: '/user/alice/', … } }, or {} with no server
 */
export function userModel(user: UserRecord, session: SessionRecord | undefined, pool?: SessionPoolFields, cullExempt = false): UserJson {
  const server = session ? serverModel(session, pool) : undefined;
  return {
    kind: 'user' as const,
    name: user.name,
    admin: user.admin,
    groups: [] as string[],
    roles: user.admin ? ['admin', 'user'] : ['user'],
    server: server?.ready ? server.url : null,
    pending: server?.pending ?? null,
    created: user.created,
    last_activity: session?.lastActivity ?? user.lastActivity,
    servers: server ? { [server.name]: server } : {},
    /** Pool fields. */
    uid: user.uid,
    disabled: user.disabled,
    cull_exempt: cullExempt,
    auth_state: null,
  };
}

/**
 * A token as JupyterHub's token model; `token` only when just created.
 *
 * @example
 * tokenModel(record, issued.token); // { id: 't9xQ3mZ1k', kind: 'api_token', token: '…', scopes: [...], … }
 * tokenModel(record); // the same without `token`, as lists show it
 */
export function tokenModel(record: TokenRecord, token?: string): TokenJson {
  return {
    id: record.id,
    kind: 'api_token' as const,
    ...(token === undefined ? {} : { token }),
    user: record.user,
    roles: [],
    note: record.note,
    scopes: [...record.scopes],
    created: record.created,
    expires_at: record.expiresAt,
    last_activity: record.lastActivity,
    session_id: null,
  };
}

/**
 * An instance, as `GET /hub/api/instances` lists it and `GET /hub/api/instances/{id}` shows it.
 *
 * @example
 * instanceModel(pool.get('i-1')!, sessions.countOn('i-1')); // { id: 'i-1', state: 'ready', sessions: 3, load: { cpu: 0.4, … }, … }
 */
export function instanceModel(view: InstanceView, sessions: number): InstanceJson {
  return {
    id: view.id,
    state: view.state,
    address: view.address,
    sessions,
    load: view.load ? { cpu: view.load.cpu, memory_used_bytes: view.load.memoryUsedBytes, memory_total_bytes: view.load.memoryTotalBytes } : null,
    capacity: view.room
      ? { cpus: view.room.cpus, memory_bytes: view.room.memoryBytes, gpus: [...view.room.gpuIndices], max_sessions: view.room.maxSessions }
      : null,
    gpu_devices: (view.capacity?.gpuDevices ?? []).map((d) => ({ index: d.index, name: d.name, memory_bytes: d.memoryBytes })),
    created: view.created,
    last_heartbeat: view.lastHeartbeat,
    unreachable_since: view.unreachableSince,
    isolation: view.isolation,
    ssh_port: view.sshPort,
    protected: view.protected,
    draining: view.draining,
    drain_deadline: view.drainDeadline,
    detail: view.detail,
    provider: { ...view.details },
  };
}
