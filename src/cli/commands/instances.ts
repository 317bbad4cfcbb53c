// `dspool instances drain <id>` and `dspool instances protect <id> [--off]`: take an instance out of placement
// and remove it once its sessions end, or protect it from removal.
import type { Command } from 'commander';
import { HubClient } from '../client.js';
import { resolveConfig } from '../config.js';
import type { InstanceJson } from '../../hub/http/schemas.js';
import { printJson } from '../output.js';

/**
 * Adds `drain` and `protect` under the `instances` command (created by `registerStatusCommands`).
 *
 * @example
 * registerStatusCommands(program);
 * registerInstanceCommands(program);
 */
export function registerInstanceCommands(program: Command): void {
  const instances = program.commands.find((c) => c.name() === 'instances') ?? program.command('instances');
  instances
    .command('drain')
    .description('stop new sessions on an instance; it is removed (and replaced) once its sessions end or the deadline passes')
    .argument('<id>', 'instance id (see dspool instances list)')
    .option('--deadline <duration>', 'how long sessions may keep running, e.g. 30m (default: pool.yaml pool.drain.deadline)')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print JSON', false)
    .action(async (id: string, opts: { config?: string; json: boolean; deadline?: string }) => {
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      const { body } = await hub.json<InstanceJson>(
        'POST', `/hub/api/instances/${encodeURIComponent(id)}/drain`, opts.deadline === undefined ? {} : { deadline: opts.deadline },
      );
      if (opts.json) return printJson(body);
      process.stdout.write(`${body.id}: draining, ${body.sessions} session(s) left; removed once they end or at ${body.drain_deadline ?? 'the deadline'}\n`);
    });
  instances
    .command('join-command')
    .description('print the one command that makes a machine an instance (provider static): a one-use, expiring token')
    .option('--expires-in <duration>', 'how long the token may be used, e.g. 30m', '1h')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print JSON', false)
    .action(async (opts: { config?: string; json: boolean; expiresIn: string }) => {
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      const { body } = await hub.json<{ token: string; expires_at: string; hub_url: string; command: string }>(
        'POST', '/hub/api/instances/join-tokens', { expires_in: opts.expiresIn },
      );
      if (opts.json) return printJson(body);
      process.stdout.write(`${body.command}\n`);
      process.stderr.write(`run it as root on the machine (one use, until ${body.expires_at})\n`);
    });
  instances
    .command('protect')
    .description('protect an instance from removal (drain, scale-in), or lift the protection with --off')
    .argument('<id>', 'instance id (see dspool instances list)')
    .option('--off', 'lift the protection', false)
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print JSON', false)
    .action(async (id: string, opts: { config?: string; json: boolean; off: boolean }) => {
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      const { body } = await hub.json<InstanceJson>('POST', `/hub/api/instances/${encodeURIComponent(id)}/protect`, { protected: !opts.off });
      if (opts.json) return printJson(body);
      process.stdout.write(`${body.id}: ${body.protected ? 'protected from removal' : 'not protected'}\n`);
    });
}
