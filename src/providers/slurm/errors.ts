// Errors the Slurm provider throws; each has a stable `code` the hub and the CLI show as they are.

/**
 * Thrown by every Slurm provider call when the Slurm controller does not answer (connection refused, timed out).
 * Not knowing is not a loss: the hub keeps the instances and their sessions and asks again later.
 */
export class SlurmUnavailableError extends Error {
  override readonly name = 'SlurmUnavailableError';
  readonly code = 'slurm_unavailable';
  constructor(
    readonly command: string,
    readonly detail: string,
  ) {
    super(`the Slurm controller did not answer ${command}: ${detail}`);
  }
}

/** Thrown by `SlurmProvider.create` when `sbatch` refuses the job (bad partition, account, time limit, gres…). */
export class SbatchRejectedError extends Error {
  override readonly name = 'SbatchRejectedError';
  readonly code = 'sbatch_rejected';
  constructor(
    readonly instanceId: string,
    /** sbatch's own words (its last error line). */
    readonly reason: string,
  ) {
    super(`sbatch refused the job of instance ${instanceId}: ${reason}`);
  }
}

/** Thrown when a Slurm command (`sbatch`, `squeue`, `scancel`) is not installed or cannot be run. */
export class SlurmCommandError extends Error {
  override readonly name = 'SlurmCommandError';
  readonly code = 'slurm_command_failed';
  constructor(
    readonly command: string,
    readonly detail: string,
  ) {
    super(`${command} failed: ${detail}`);
  }
}

/** Thrown by `SlurmProvider.create` when an instance id cannot be used as a job name and a file name. */
export class InvalidSlurmInstanceIdError extends Error {
  override readonly name = 'InvalidSlurmInstanceIdError';
  readonly code = 'invalid_instance_id';
  constructor(readonly instanceId: string) {
    super(`instance id "${instanceId}" is not usable as a Slurm job name (letters, digits, ".", "_", "-"; at most 100)`);
  }
}

/** Thrown by `SlurmProvider` methods called after `close()`; names the provider's state. */
export class SlurmProviderClosedError extends Error {
  override readonly name = 'SlurmProviderClosedError';
  readonly code = 'provider_closed';
  constructor(
    readonly operation: string,
    readonly state: string,
  ) {
    super(`cannot ${operation}: the Slurm provider is ${state}`);
  }
}
