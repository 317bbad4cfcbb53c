/**
 * The `static` provider: machines that already exist join the pool with `dspool agent join <hub-url> --token <t>`
 * (the token from `dspool instances join-command`); each one claims an instance the pool made for it.
 *
 * @example
 * import { createStaticProvider } from './providers/static/index.js';
 * const provider = createStaticProvider({ type: 'static', hosts: ['10.0.0.5'], dataDir }, log);
 * @module
 */
export {
  StaticProvider,
  createStaticProvider,
  staticProviderDefaults,
  type ResolvedStaticProviderOptions,
  type StaticProviderFactoryConfig,
  type StaticProviderOptions,
  type StaticProviderState,
} from './static-provider.js';
export { HostNotListedError, InvalidStaticInstanceIdError, NoFreeInstanceError, StaticProviderClosedError } from './errors.js';
