/**
 * pool.yaml: the zod definition, its defaults (one place) and the generated JSON Schema.
 *
 * @example
 * import { loadConfig } from './config/index.js';
 * const config = loadConfig('pool.yaml');
 * console.log(config.gateway.port); // 8000 unless set
 * @module
 */
export { loadConfig, parseConfig, configJsonSchema, type LoadedConfig } from './load.js';
export { ConfigError, type ConfigProblem } from './errors.js';
export { poolConfigSchema, type PoolConfig, type PoolConfigInput, type ProviderConfig, type LocalProviderConfig } from './schema.js';
