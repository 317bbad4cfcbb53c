/**
 * The `local` provider: each instance is a detached agent process on this machine with its own scratch
 * directory (`<scratchDir>/<id>/`: `instance.json`, `agent.log`, users' `$HOME`s, server logs), deleted with it.
 *
 * @example
 * import { createLocalProvider } from './providers/local/index.js';
 * const provider = createLocalProvider({ type: 'local', dataDir: '/var/lib/dspool' }, log);
 * const instance = await provider.create({ id: 'i-1', hubUrl, joinToken, settings });
 * await provider.delete(instance.id);
 * @module
 */
export {
  LocalProvider,
  createLocalProvider,
  localProviderDefaults,
  type InstanceRecord,
  type LocalProviderFactoryConfig,
  type LocalProviderOptions,
  type LocalProviderState,
  type ResolvedLocalProviderOptions,
} from './local-provider.js';
export { AgentEntryMissingError, AgentSpawnError, InstanceExistsError, InvalidInstanceIdError, ProviderClosedError } from './errors.js';
