// Errors the local provider throws; each has a stable `code` the hub can map.

/** Thrown by `LocalProvider.create` when an instance id cannot be used as a directory name. */
export class InvalidInstanceIdError extends Error {
  override readonly name = 'InvalidInstanceIdError';
  readonly code = 'invalid_instance_id';
  constructor(readonly instanceId: string) {
    super(`instance id "${instanceId}" is not usable as a directory name (letters, digits, ".", "_", "-"; at most 128)`);
  }
}

/** Thrown by `LocalProvider.create` when an agent for the same id is still running. */
export class InstanceExistsError extends Error {
  override readonly name = 'InstanceExistsError';
  readonly code = 'instance_exists';
  constructor(
    readonly instanceId: string,
    readonly pid: number,
  ) {
    super(`instance ${instanceId} already exists (agent pid ${pid})`);
  }
}

/** Thrown by `LocalProvider.create` when the agent's entry file is missing (dspool not built?). */
export class AgentEntryMissingError extends Error {
  override readonly name = 'AgentEntryMissingError';
  readonly code = 'agent_entry_missing';
  constructor(readonly candidates: readonly string[]) {
    super(`the agent entry point was not found (looked at ${candidates.join(', ')}); run "npm run build" or set agentEntry`);
  }
}

/** Thrown by `LocalProvider.create` when the agent process cannot be started. */
export class AgentSpawnError extends Error {
  override readonly name = 'AgentSpawnError';
  readonly code = 'agent_spawn_failed';
  constructor(
    readonly instanceId: string,
    options: { cause: unknown },
  ) {
    super(`cannot start the agent of instance ${instanceId}: ${(options.cause as Error)?.message ?? String(options.cause)}`, options);
  }
}

/** Thrown by `LocalProvider` methods called after `close()`; names the provider's state. */
export class ProviderClosedError extends Error {
  override readonly name = 'ProviderClosedError';
  readonly code = 'provider_closed';
  constructor(
    readonly operation: string,
    readonly state: string,
  ) {
    super(`cannot ${operation}: the local provider is ${state}`);
  }
}
