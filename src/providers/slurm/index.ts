/**
 * The `slurm` provider: each instance is a Slurm job (`sbatch` of a generated script) running the agent, which
 * dials the hub from its compute node. A job Slurm ends (time limit, node failure, `scancel`) is reported through
 * `watch` as a lost instance; a controller that does not answer is not.
 *
 * @example
 * import { createSlurmProvider } from './providers/slurm/index.js';
 * const provider = createSlurmProvider({ ...config.provider, dataDir: config.dataDir }, log);
 * provider.watchGone(({ id, reason }) => pool.lost(id, reason));
 * @module
 */
export {
  SlurmProvider,
  createSlurmProvider,
  slurmProviderDefaults,
  type ResolvedSlurmProviderOptions,
  type SlurmProviderFactoryConfig,
  type SlurmProviderOptions,
  type SlurmProviderState,
  type SlurmRecord,
} from './slurm-provider.js';
export { batchScript, goneReason, jobAlive, parseSqueue, sbatchArgs, type JobRequest, type JobStatus } from './job.js';
export { InvalidSlurmInstanceIdError, SbatchRejectedError, SlurmCommandError, SlurmProviderClosedError, SlurmUnavailableError } from './errors.js';
