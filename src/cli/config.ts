// Which pool.yaml a command uses: --config, then $DSPOOL_CONFIG, then ./pool.yaml.
import { ConfigError, loadConfig, type LoadedConfig } from '../config/index.js';
import { UsageError } from './errors.js';

/**
 * Loads the config a command names; a bad file is a usage error (exit 2) listing every bad key.
 *
 * @example
 * const config = resolveConfig(options.config);
 */
export function resolveConfig(flag: string | undefined): LoadedConfig {
  const file = flag ?? process.env.DSPOOL_CONFIG ?? 'pool.yaml';
  try {
    return loadConfig(file);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new UsageError(`invalid config ${error.file}:\n${error.problems.map((p) => `  - ${p.path ? `${p.path}: ` : ''}${p.message}`).join('\n')}`);
    }
    throw error;
  }
}
