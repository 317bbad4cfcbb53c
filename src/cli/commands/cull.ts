// `dspool extend` and `dspool users exempt`: keeping an idle server running, and exempting a user from culling.
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { parseDuration } from '../../lib/duration.js';
import { checkName } from '../args.js';
import { HubClient } from '../client.js';
import { resolveConfig } from '../config.js';
import { UsageError } from '../errors.js';
import { printJson } from '../output.js';

/** Longest `--for` the hub accepts. */
const MAX_FOR_MS = 7 * 86_400_000;

/**
 * Registers `dspool extend` on the program and `exempt` under `dspool users`.
 *
 * @example
 * registerCullCommands(program, registerUserCommands(program));
 */
export function registerCullCommands(program: Command, users: Command): void {
  program
    .command('extend')
    .description("keep a user's server running for a while whatever it does (postpones the idle cull and withdraws its warning)")
    .option('--user <name>', 'whose server (default: your login name)')
    .option('--for <duration>', 'how long, e.g. 30m, 2h (at most 7d)', '1h')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print the answer as JSON', false)
    .action(async (opts: { user?: string; for: string; config?: string; json: boolean }) => {
      const user = checkName(opts.user ?? userInfo().username);
      const forMs = parseDuration(opts.for);
      if (forMs === undefined || forMs < 1000 || forMs > MAX_FOR_MS) throw new UsageError(`--for: "${opts.for}" is not a duration from 1s to 7d (e.g. 30m, 2h)`);
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      const { body } = await hub.json<{ extended_until: string; cull_at: string | null }>('POST', `/hub/api/users/${user}/server/extend`, { for: forMs });
      if (opts.json) return printJson(body);
      process.stdout.write(`${user}'s server is kept running until ${body.extended_until}${body.cull_at ? ` (then stopped at ${body.cull_at} if still idle)` : ''}\n`);
    });

  users
    .command('exempt <name>')
    .description('exempt a user from idle culling (--off lifts it)')
    .option('--off', 'lift the exemption instead', false)
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print the user as JSON', false)
    .action(async (name: string, opts: { off: boolean; config?: string; json: boolean }) => {
      checkName(name);
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      const { body } = await hub.json<{ name: string; cull_exempt: boolean }>('PATCH', `/hub/api/users/${name}`, { cull_exempt: !opts.off });
      if (opts.json) return printJson(body);
      process.stdout.write(`${body.name} is ${body.cull_exempt ? 'exempt from' : 'subject to'} idle culling\n`);
    });
}
