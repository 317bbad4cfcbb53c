// The hub as its own process (forked by `dspool up`): SIGTERM/SIGINT stop the pool and exit; SIGUSR2 exits and
// leaves instances and servers running for the next hub to re-adopt; losing the parent stops the pool.
import { loadConfig } from '../config/index.js';
import { createLogger } from '../lib/log.js';
import { VERSION } from '../lib/version.js';
import { createProvider } from '../providers/index.js';
import { startHub } from './hub.js';

/** Messages the hub process sends its parent over IPC. */
export interface HubProcessMessage {
  readonly type: 'ready';
  readonly url: string;
  readonly port: number;
  /** The agents' listener port, when `hub.agentAddress` is set. */
  readonly agentPort?: number;
}

async function main(): Promise<void> {
  const configFile = process.env.DSPOOL_CONFIG;
  if (!configFile) {
    process.stderr.write('dspool hub: DSPOOL_CONFIG is not set\n');
    process.exit(2);
  }
  const config = loadConfig(configFile);
  const log = createLogger('hub', config.log.level);
  const portOverride = process.env.DSPOOL_HUB_PORT ? Number(process.env.DSPOOL_HUB_PORT) : undefined;
  const agentPortOverride = process.env.DSPOOL_HUB_AGENT_PORT ? Number(process.env.DSPOOL_HUB_AGENT_PORT) : undefined;
  const hub = await startHub({ config, provider: createProvider(config, log), log, version: VERSION, port: portOverride, agentPort: agentPortOverride });
  const stop = (stopPool: boolean) => {
    void hub.close({ stopPool }).then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop(true));
  process.once('SIGINT', () => stop(true));
  process.once('SIGUSR2', () => stop(false));
  process.once('disconnect', () => stop(true));
  const ready: HubProcessMessage = { type: 'ready', url: hub.url, port: hub.port, ...(hub.agentPort === undefined ? {} : { agentPort: hub.agentPort }) };
  process.send?.(ready);
}

main().catch((error: unknown) => {
  process.stderr.write(`dspool hub: ${(error as Error).message}\n`);
  process.exit(1);
});
