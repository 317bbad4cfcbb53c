// `dspool scale <n>`: the size the pool is kept at. A scale-in drains instances (fewest sessions first), never kills.
import type { Command } from 'commander';
import { HubClient } from '../client.js';
import { resolveConfig } from '../config.js';
import { OperationError, UsageError } from '../errors.js';
import { printJson } from '../output.js';
import { waitForPool } from '../wait.js';

const WAIT_TIMEOUT_MS = 300_000;

interface PoolJson {
  instances: number;
  configured: number;
  ready: number;
  draining: string[];
}

/**
 * Adds `dspool scale`, which sets the running pool's size.
 *
 * @example
 * registerScaleCommand(program); // adds `dspool scale <instances>`
 */
export function registerScaleCommand(program: Command): void {
  program
    .command('scale <instances>')
    .description('keep the pool at this many instances (0–1000); shrinking drains the least busy ones, never kills a session')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--wait', 'wait until that many instances are ready, showing their progress on stderr', false)
    .option('--json', 'print the pool as JSON', false)
    .action(async (raw: string, opts: { config?: string; json: boolean; wait: boolean }) => {
      const instances = Number(raw);
      if (!/^\d+$/.test(raw) || instances > 1000) throw new UsageError(`instances: "${raw}" is not a whole number from 0 to 1000`);
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      let { body } = await hub.json<PoolJson>('PATCH', '/hub/api/pool', { instances });
      if (opts.wait) {
        if (!(await waitForPool(hub, WAIT_TIMEOUT_MS, { failAfterCreateErrors: 2 }))) throw new OperationError(`not every instance was ready after ${WAIT_TIMEOUT_MS / 1000} s`);
        body = (await hub.json<PoolJson>('GET', '/hub/api/pool')).body;
      }
      if (opts.json) return printJson(body);
      const draining = body.draining.length ? `; draining ${body.draining.join(', ')} (removed once their sessions end)` : '';
      process.stdout.write(`pool size ${body.instances} (pool.yaml says ${body.configured}), ${body.ready} ready${draining}\n`);
    });
}
