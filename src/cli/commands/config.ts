// `dspool config schema | check`: the JSON Schema of pool.yaml, and validating a file (printed resolved, as YAML or JSON).
import type { Command } from 'commander';
import { stringify } from 'yaml';
import { configJsonSchema } from '../../config/index.js';
import { resolveConfig } from '../config.js';
import { printJson } from '../output.js';

/**
 * Adds `dspool config`: pool.yaml's JSON Schema, and checking a file.
 *
 * @example
 * registerConfigCommands(program); // adds `dspool config schema` and `dspool config check`
 */
export function registerConfigCommands(program: Command): void {
  const config = program.command('config').description('pool.yaml: its schema, and checking a file');
  config
    .command('schema')
    .description('print the JSON Schema of pool.yaml')
    .action(() => printJson({ $id: 'https://dspool.dev/schema/pool.json', title: 'dspool pool.yaml', ...configJsonSchema() }));
  config
    .command('check')
    .description('validate a pool.yaml and print it with every default filled in')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print the resolved config as JSON', false)
    .action((opts: { config?: string; json: boolean }) => {
      const resolved = resolveConfig(opts.config);
      if (opts.json) return printJson(resolved);
      process.stdout.write(`# ${resolved.configFile}: valid. Resolved, every default filled in (durations in ms, sizes in bytes):\n`);
      process.stdout.write(stringify(resolved));
    });
}
