// Errors thrown while reading pool.yaml.

/** One problem in a config file: the dotted key at fault and why. */
export interface ConfigProblem {
  readonly path: string;
  readonly message: string;
}

/** Thrown by `loadConfig` / `parseConfig` when pool.yaml cannot be read or is invalid; lists every bad key. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  readonly code = 'config_invalid';
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
    options?: { cause?: unknown },
  ) {
    super(`${file}: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`, options);
  }
}
