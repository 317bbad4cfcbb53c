/**
 * Providers create and delete instances; the hub receives one through `createProvider` and never imports an
 * engine directly. Each engine lives in its own folder (`local/`, …) and implements `Provider`.
 *
 * @example
 * import { createProvider } from './providers/index.js';
 * const provider = createProvider(config, log);
 * await provider.create({ id: 'i-1', hubUrl, joinToken, settings });
 * @module
 */
import type { PoolConfig } from '../config/schema.js';
import type { Logger } from '../lib/log.js';
import { createLocalProvider } from './local/index.js';
import { createSlurmProvider } from './slurm/index.js';
import { createStaticProvider } from './static/index.js';
import type { Provider } from './provider.js';

export type { ClaimedInstance, DeleteOptions, InstanceGone, InstanceSpec, Provider, ProviderInstance } from './provider.js';

/**
 * Builds the provider pool.yaml names in `provider.type`.
 *
 * @example
 * const provider = createProvider(loadConfig('pool.yaml'), log);
 */
export function createProvider(config: Pick<PoolConfig, 'provider' | 'dataDir'>, log: Logger): Provider {
  switch (config.provider.type) {
    case 'local':
      return createLocalProvider({ ...config.provider, dataDir: config.dataDir }, log);
    case 'slurm':
      return createSlurmProvider({ ...config.provider, dataDir: config.dataDir }, log);
    case 'static':
      return createStaticProvider({ ...config.provider, dataDir: config.dataDir }, log);
  }
}
