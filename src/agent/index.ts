/**
 * The agent: one per instance. It dials the hub (`AGENT_PATH`), reports capacity, load and its servers, and
 * starts and stops users' Jupyter servers: local account with the hub-assigned UID/GID, `$HOME` on the
 * instance's scratch disk, `$HOME/notebooks/remote` → `<share>/users/<name>/notebooks`, Jupyter run as the user
 * with its token in the environment only. Run it as `node dist/agent/main.js` with `AGENT_ENV` set, or embed it:
 *
 * @example
 * import { Agent, readAgentEnv } from './agent/index.js';
 * const agent = new Agent(readAgentEnv(process.env));
 * agent.start();
 * process.once('SIGTERM', () => void agent.close());
 * await agent.done;
 * @module
 */
export { Agent, type AgentState } from './agent.js';
export { readAgentEnv } from './env.js';
export { agentDefaults, type AgentOptions, type ResolvedAgentOptions } from './options.js';
export { HubConnection, type ConnectionOptions, type ConnectionState } from './connection.js';
export { UserServer, nextServerState, type ServerContext, type ServerExit, type ServerState } from './server.js';
export { ensureAccount, removeAccount, type AccountContext } from './account.js';
export { JUPYTER_CONFIG_PY, userPaths, type UserPaths } from './layout.js';
export { ShareKeeper, shareKeeperDefaults, type ShareKeeperOptions, type ShareState, type ShareStatus } from './share.js';
export { mountCommand, parseMountinfo, type MountCommand, type MountEntry } from './share-mount.js';
export type { SpawnSpec } from './spawn-spec.js';
export { spawnAsUser, spawnPlan, type SpawnAsUserOptions, type SpawnPlan } from './spawn.js';
export {
  createSessionCgroup,
  detectCgroups,
  instanceCgroupDirs,
  instanceCgroupName,
  killInstanceCgroup,
  prepareInstanceCgroup,
  type CgroupController,
  type CgroupHost,
  type CgroupLimits,
  type SessionCgroup,
} from './cgroup.js';
export {
  AccountError,
  AgentEnvError,
  AgentError,
  AgentStateError,
  BadRequestError,
  CgroupSetupError,
  HomeUnreachableError,
  IllegalServerTransitionError,
  JupyterMissingError,
  ServerStartError,
  ServerStartTimeoutError,
  SessionExistsError,
  ShareCredentialsError,
  ShareUnavailableError,
  SpawnToolMissingError,
} from './errors.js';
/** @internal for tests and diagnostics */
export { KernelClient, type ExecuteResult } from './kernel-client.js';
