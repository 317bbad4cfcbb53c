// Errors the agent throws. Each one that reaches the hub carries a stable `AgentErrorCode` in `code`.
import { AgentErrorCode } from '../protocol/agent.js';

/** Base of every error the agent reports to the hub in a failed `reply`; `code` is what the hub matches on. */
export class AgentError extends Error {
  override readonly name: string = 'AgentError';
  constructor(
    readonly code: AgentErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Thrown by the request handler when a request's params do not match its schema. */
export class BadRequestError extends AgentError {
  override readonly name = 'BadRequestError';
  constructor(
    readonly method: string,
    readonly problems: readonly string[],
  ) {
    super(AgentErrorCode.badRequest, `${method}: invalid params: ${problems.join('; ')}`);
  }
}

/** Thrown by `startServer` when the configured Jupyter command does not exist or is not executable. */
export class JupyterMissingError extends AgentError {
  override readonly name = 'JupyterMissingError';
  constructor(
    readonly command: string,
    readonly searchPath: string,
    options?: { cause?: unknown },
  ) {
    super(
      AgentErrorCode.jupyterMissing,
      `Jupyter command "${command}" was not found or is not executable (PATH=${searchPath}); ` +
        `install Debian's jupyter-notebook and python3-ipykernel (apt-get install jupyter-notebook python3-ipykernel), ` +
        `or set jupyter.command in pool.yaml`,
      options,
    );
  }
}

/** Thrown by `startServer` when the Jupyter process exits (or cannot be spawned) before it answers. */
export class ServerStartError extends AgentError {
  override readonly name = 'ServerStartError';
  constructor(
    readonly sessionId: string,
    readonly exitCode: number | null,
    readonly signal: string | null,
    /** Last lines the server printed, secrets redacted. */
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(
      AgentErrorCode.startFailed,
      `Jupyter server for session ${sessionId} exited before it was ready (code ${exitCode}, signal ${signal})` +
        (detail ? `:\n${detail}` : ''),
      options,
    );
  }
}

/** Thrown by `startServer` when the server does not answer `api/status` within `jupyter.startTimeoutMs`. */
export class ServerStartTimeoutError extends AgentError {
  override readonly name = 'ServerStartTimeoutError';
  constructor(
    readonly sessionId: string,
    readonly timeoutMs: number,
    readonly detail: string,
  ) {
    super(
      AgentErrorCode.startTimeout,
      `Jupyter server for session ${sessionId} did not answer within ${timeoutMs} ms; it was stopped` +
        (detail ? `. Last output:\n${detail}` : ''),
    );
  }
}

/** Thrown by `ensureAccount` when the local account cannot be created or exists with another UID/GID. */
export class AccountError extends AgentError {
  override readonly name = 'AccountError';
  constructor(
    readonly user: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(AgentErrorCode.accountFailed, `account "${user}": ${reason}`, options);
  }
}

/** Thrown by `startServer` when the user's folders on the share cannot be created. */
export class ShareUnavailableError extends AgentError {
  override readonly name = 'ShareUnavailableError';
  constructor(
    readonly path: string,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(AgentErrorCode.shareUnavailable, `the share is not usable at ${path}: ${reason}`, options);
  }
}

/**
 * Thrown by the share keeper (`share.mount`) when a credentials file (`credentialsFile`, `identityFile`) is not root's
 * own: missing, not a regular file, not owned by root, or readable by group or others. The mount is not attempted.
 * Carries the pool.yaml field and the file's path, never its content.
 */
export class ShareCredentialsError extends AgentError {
  override readonly name = 'ShareCredentialsError';
  constructor(
    readonly field: string,
    readonly file: string,
    readonly reason: string,
  ) {
    super(AgentErrorCode.shareUnavailable, `${field}: ${file} ${reason}`);
  }
}

/** Thrown by `startServer` when the user cannot reach their `$HOME` (on the share) or their folder on the instance's disk because a parent directory is closed to them. */
export class HomeUnreachableError extends AgentError {
  override readonly name = 'HomeUnreachableError';
  constructor(
    readonly user: string,
    readonly home: string,
    options?: { cause?: unknown },
  ) {
    super(
      AgentErrorCode.startFailed,
      `user "${user}" cannot reach ${home}: every parent directory of the share and of the instance's scratch directory must be traversable by others (chmod o+x)`,
      options,
    );
  }
}

/** Thrown by `startServer` when a server with the same session id already exists on this agent. */
export class SessionExistsError extends AgentError {
  override readonly name = 'SessionExistsError';
  constructor(readonly sessionId: string) {
    super(AgentErrorCode.badRequest, `session ${sessionId} already has a server on this instance`);
  }
}

/** Thrown by a server's transition function when a state change is not allowed from its current state. */
export class IllegalServerTransitionError extends AgentError {
  override readonly name = 'IllegalServerTransitionError';
  constructor(
    readonly sessionId: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(AgentErrorCode.internal, `server ${sessionId}: cannot go from "${from}" to "${to}"`);
  }
}

/** Thrown by `Agent` methods called in a state that does not allow them (e.g. `start` after `close`). */
export class AgentStateError extends AgentError {
  override readonly name = 'AgentStateError';
  constructor(
    readonly operation: string,
    readonly state: string,
  ) {
    super(AgentErrorCode.internal, `cannot ${operation} while the agent is ${state}`);
  }
}

/** Thrown by `readAgentEnv` when the agent's environment is missing a variable or holds invalid settings. */
export class AgentEnvError extends Error {
  override readonly name = 'AgentEnvError';
  readonly code = 'agent_env_invalid';
  constructor(readonly problems: readonly string[]) {
    super(`invalid agent environment: ${problems.join('; ')}`);
  }
}

/**
 * Thrown by the agent's cgroup module when a session's cgroup cannot be made, limited or removed (a v2 host whose
 * agent cgroup cannot hand controllers down, a cgroupfs that refuses a write). A start that meets it fails.
 */
export class CgroupSetupError extends AgentError {
  override readonly name = 'CgroupSetupError';
  constructor(
    /** The session id (or cgroup folder name) concerned. */
    readonly subject: string,
    readonly reason: string,
    options?: { cause?: unknown },
  ) {
    super(AgentErrorCode.startFailed, `cgroup for ${subject}: ${reason}`, options);
  }
}

/** Thrown by `spawnPlan` (as root) when a tool that starts a user's process is not installed (setpriv, env -C). */
export class SpawnToolMissingError extends AgentError {
  override readonly name = 'SpawnToolMissingError';
  constructor(
    readonly tool: string,
    readonly debianPackage: string,
    readonly searched: readonly string[],
  ) {
    super(AgentErrorCode.startFailed, `${tool} was not found (looked in ${searched.join(', ')}); install Debian's ${debianPackage}`);
  }
}

/**
 * Thrown by `JoinedMachine` when the hub refuses this machine for good (a wrong, used or expired join token, an
 * address not in `provider.hosts`, a host credential it does not know). `code` is the hub's stable code.
 */
export class JoinRefusedError extends Error {
  override readonly name = 'JoinRefusedError';
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}
