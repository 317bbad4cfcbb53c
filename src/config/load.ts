// Reads pool.yaml, validates it and resolves its paths: the one place config defaults are applied.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import { z } from 'zod';
import { ConfigError, type ConfigProblem } from './errors.js';
import { poolConfigSchema, type PoolConfig } from './schema.js';

/** A validated config plus where it came from. */
export interface LoadedConfig extends PoolConfig {
  /** Absolute path of the file it was read from (or `<inline>`). */
  readonly configFile: string;
}

/**
 * Reads, validates and resolves a pool.yaml. Throws `ConfigError` naming each bad key.
 *
 * @example
 * const config = loadConfig('pool.yaml');
 * config.share.path; // absolute
 */
export function loadConfig(file: string): LoadedConfig {
  const absolute = resolve(file);
  let text: string;
  try {
    text = readFileSync(absolute, 'utf8');
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : String(cause);
    throw new ConfigError(absolute, [{ path: '', message: `cannot read config: ${reason}` }], { cause });
  }
  return parseConfig(text, absolute);
}

/**
 * Validates config text; relative paths resolve against the directory of `file`.
 *
 * @example
 * parseConfig('share: { path: /srv/share }', '/etc/dspool/pool.yaml').dataDir; // '/etc/dspool/state'
 */
export function parseConfig(text: string, file: string): LoadedConfig {
  let raw: unknown;
  try {
    raw = parseYaml(text) ?? {};
  } catch (cause) {
    const where = cause instanceof YAMLParseError && cause.linePos ? `line ${cause.linePos[0].line}: ` : '';
    throw new ConfigError(file, [{ path: '', message: `${where}not valid YAML (${(cause as Error).message.split('\n')[0]})` }], { cause });
  }
  if (typeof raw !== 'object' || Array.isArray(raw)) {
    throw new ConfigError(file, [{ path: '', message: 'the config must be a mapping of keys (like `share:` and `pool:`)' }]);
  }
  const result = poolConfigSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(file, describeIssues(result.error, raw));
  const base = dirname(file);
  const at = (p: string) => (isAbsolute(p) ? p : resolve(base, p));
  const config = result.data;
  let provider = config.provider;
  if (provider.type === 'local' && provider.scratchDir !== undefined) provider = { ...provider, scratchDir: at(provider.scratchDir) };
  if (provider.type === 'slurm' && provider.slurmConf !== null) provider = { ...provider, slurmConf: at(provider.slurmConf) };
  const problems: ConfigProblem[] = [];
  // Agents on other machines dial the hub: with TLS on hub.agentAddress's listener, or plain on a private network.
  // Without either, the join token and instance credentials would cross the network in clear text.
  if (provider.type !== 'local' && config.hub.agentAddress === null && !config.hub.privateNetwork) {
    problems.push({
      path: 'hub.agentAddress',
      message:
        `instances on other machines (provider ${provider.type}) dial the hub over the network: set hub.agentAddress (host:port on the ` +
        'network they reach the hub by; it serves TLS, pinned by the agents), or hub.privateNetwork: true if that network is private (a VPN, a cluster network) and plain HTTP is fine there',
    });
  }
  if (problems.length > 0) throw new ConfigError(file, problems);
  // A static pool has exactly one instance per listed machine.
  const pool = provider.type === 'static' ? { ...config.pool, instances: provider.hosts.length } : config.pool;
  return { ...config, pool, configFile: file, dataDir: at(config.dataDir), share: { ...config.share, path: at(config.share.path) }, provider };
}

/**
 * The JSON Schema of pool.yaml (as users write it), generated from the zod definition.
 *
 * @example
 * printJson(configJsonSchema()); // `dspool config schema`: { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', … }
 */
export function configJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(poolConfigSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

function describeIssues(error: z.ZodError, raw: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const path = issue.path.map(String);
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const known = knownKeys(path);
        const hint = closest(key, known);
        problems.push({
          path: [...path, key].join('.'),
          message: `unknown key${hint ? ` (did you mean "${hint}"?)` : ''}${known.length ? `; allowed: ${known.join(', ')}` : ''}`,
        });
      }
      continue;
    }
    const given = valueAt(raw, issue.path);
    const message = issue.code === 'invalid_type' && given === undefined ? 'is required' : issue.message;
    // Mount options may hold what someone pasted by mistake (a password): never echoed back.
    const echo = given !== undefined && !path.join('.').startsWith('share.mount.options');
    problems.push({ path: path.join('.'), message: echo ? `${message} (got ${JSON.stringify(given)})` : message });
  }
  return problems;
}

function valueAt(raw: unknown, path: readonly PropertyKey[]): unknown {
  let value: unknown = raw;
  for (const key of path) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<PropertyKey, unknown>)[key];
  }
  return value;
}

function knownKeys(path: readonly string[]): string[] {
  let schema: z.ZodType = poolConfigSchema;
  for (const key of path) {
    const shape = objectShape(schema);
    const next = shape?.[key];
    if (!next) return [];
    schema = next;
  }
  return Object.keys(objectShape(schema) ?? {});
}

function objectShape(schema: z.ZodType): Record<string, z.ZodType> | undefined {
  let current: z.ZodType = schema;
  for (let i = 0; i < 8; i++) {
    if (current instanceof z.ZodObject) return current.shape as Record<string, z.ZodType>;
    const inner = (current.def as { innerType?: z.ZodType }).innerType;
    if (inner) {
      current = inner;
      continue;
    }
    if (current instanceof z.ZodDiscriminatedUnion) {
      const shapes = (current.options as z.ZodType[]).map((o) => objectShape(o) ?? {});
      return Object.assign({}, ...shapes) as Record<string, z.ZodType>;
    }
    return undefined;
  }
  return undefined;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const candidate of candidates) {
    const d = editDistance(word.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diagonal = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j] ?? 0;
      row[j] = Math.min(above + 1, (row[j - 1] ?? 0) + 1, diagonal + (a[i - 1] === b[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[b.length] ?? 0;
}

