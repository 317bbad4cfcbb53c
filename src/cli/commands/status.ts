// `dspool status` and `dspool instances list`: what the running pool looks like.
import type { Command } from 'commander';
import { HubClient } from '../client.js';
import { resolveConfig } from '../config.js';
import type { InstanceJson } from '../../hub/http/schemas.js';
import { printJson, printTable } from '../output.js';

interface ServerLine {
  ready: boolean;
  instance: string | null;
  started: string;
  session_state?: string;
}

async function fetchStatus(configFlag: string | undefined) {
  const config = resolveConfig(configFlag);
  const hub = HubClient.forConfig(config);
  const [instances, users] = await Promise.all([
    hub.json<InstanceJson[]>('GET', '/hub/api/instances'),
    hub.json<Array<{ name: string; servers: Record<string, ServerLine> }>>('GET', '/hub/api/users'),
  ]);
  const servers = users.body.flatMap((u) => {
    const server = u.servers[''];
    return server ? [{ user: u.name, instance: server.instance, state: server.session_state ?? (server.ready ? 'running' : 'starting'), started: server.started }] : [];
  });
  return {
    hub_url: hub.url,
    gateway_url: `http://${config.gateway.host}:${config.gateway.port}`,
    instances: instances.body,
    users: users.body.length,
    sessions: servers.length,
    servers,
  };
}

/** "1 user", "2 users". */
function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

function instanceRows(instances: InstanceJson[]): string[][] {
  return instances.map((i) => [
    i.id, i.state, i.address ?? '', String(i.sessions), i.load ? i.load.cpu.toFixed(2) : '', String(i.provider.pid ?? ''),
    [i.draining && i.state !== 'draining' ? 'draining' : '', i.protected ? 'protected' : ''].filter(Boolean).join(','),
  ]);
}

/** Why each instance that says so is not ready (a failed check, a share that will not mount), one line each. */
function printDetails(instances: InstanceJson[]): void {
  const lines = instances.filter((i) => i.detail && i.state !== 'ready').map((i) => `${i.id} (${i.state}): ${i.detail}\n`);
  if (lines.length > 0) process.stdout.write(`\n${lines.join('')}`);
}

/**
 * Adds `dspool status` and `dspool instances`, which show the running pool and its instances.
 *
 * @example
 * registerStatusCommands(program); // adds `dspool status` and `dspool instances …`
 */
export function registerStatusCommands(program: Command): void {
  program
    .command('status')
    .description('show the running pool: instances, and which user\'s server runs on which instance')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print JSON', false)
    .action(async (opts: { config?: string; json: boolean }) => {
      const status = await fetchStatus(opts.config);
      if (opts.json) return printJson(status);
      process.stdout.write(`hub ${status.hub_url} · ${plural(status.users, 'user')} · ${plural(status.sessions, 'active session')}\n\n`);
      printTable(['INSTANCE', 'STATE', 'ADDRESS', 'SESSIONS', 'CPU', 'PID', 'FLAGS'], instanceRows(status.instances));
      printDetails(status.instances);
      if (status.servers.length === 0) return;
      process.stdout.write('\n');
      printTable(['USER', 'SERVER', 'INSTANCE', 'STARTED'], status.servers.map((s) => [s.user, s.state, s.instance ?? '(waiting)', s.started]));
    });

  const instances = program.command('instances').description('inspect the pool\'s instances');
  instances
    .command('list')
    .description('list instances with their state, address, sessions and load')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print JSON', false)
    .action(async (opts: { config?: string; json: boolean }) => {
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      const { body } = await hub.json<InstanceJson[]>('GET', '/hub/api/instances');
      if (opts.json) return printJson(body);
      printTable(['INSTANCE', 'STATE', 'ADDRESS', 'SESSIONS', 'CPU', 'PID', 'FLAGS'], instanceRows(body));
      printDetails(body);
    });
}
