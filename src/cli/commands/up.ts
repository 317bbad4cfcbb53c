// `dspool up`: runs a pool in the foreground. Forks the hub, serves the gateway in this process, waits for the
// instances, prints the address, restarts the hub if it dies, and on SIGINT/SIGTERM stops everything it started.
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import type { LoadedConfig } from '../../config/index.js';
import { createGateway, type Gateway } from '../../gateway/index.js';
import { hubSshClient, startSshFrontDoor } from '../../gateway/ssh/index.js';
import { urlHost } from '../../lib/address.js';
import { backoffMs } from '../../lib/backoff.js';
import { createLogger } from '../../lib/log.js';
import { pidAlive } from '../../lib/process.js';
import { findExecutable } from '../../lib/which.js';
import { GATEWAY_SECRET_FILE } from '../../protocol/gateway.js';
import { createProvider } from '../../providers/index.js';
import type { HubProcessMessage } from '../../hub/main.js';
import { SSH_HOST_KEY_FILE, SSH_INTERNAL_KEY_FILE, readRuntime, writeFrontDoorInfo } from '../../hub/runtime.js';
import { HubClient } from '../client.js';
import { resolveConfig } from '../config.js';
import { waitForPool } from '../wait.js';
import { OperationError } from '../errors.js';
import { note } from '../output.js';

const HUB_ENTRY = fileURLToPath(new URL('../../hub/main.js', import.meta.url));
const HUB_START_TIMEOUT_MS = 60_000;
const READY_TIMEOUT_MS = 180_000;
const SHUTDOWN_TIMEOUT_MS = 60_000;

/** State of `dspool up`. */
type UpState = 'starting' | 'running' | 'stopping' | 'stopped';

/** Checks what would otherwise fail later and slowly: Jupyter present, no other hub on this dataDir. */
function preflight(config: LoadedConfig): void {
  const [command] = config.jupyter.command;
  if (!command || !findExecutable(command, config.jupyter.path)) {
    throw new OperationError(
      `the Jupyter server command "${command}" was not found (jupyter.command in ${config.configFile}). ` +
        'Install it with: sudo apt-get install jupyter-notebook python3-ipykernel — or point jupyter.command at your Jupyter server.',
    );
  }
  const running = readRuntime(config.dataDir);
  if (running && pidAlive(running.pid)) {
    throw new OperationError(`a hub (pid ${running.pid}) already runs for ${config.dataDir} at ${running.hub_url}`);
  }
}

/** Forks the hub and resolves once it listens. */
/** The ports a restarted hub takes again: its agents dial them (and the gateway the first). */
interface HubPorts {
  readonly port: number | undefined;
  readonly agentPort?: number | undefined;
}

function startHubProcess(config: LoadedConfig, ports: HubPorts): Promise<{ child: ChildProcess; url: string; port: number; agentPort: number | undefined }> {
  const child = fork(HUB_ENTRY, [], {
    env: {
      ...process.env,
      DSPOOL_CONFIG: config.configFile,
      ...(ports.port === undefined ? {} : { DSPOOL_HUB_PORT: String(ports.port) }),
      ...(ports.agentPort === undefined ? {} : { DSPOOL_HUB_AGENT_PORT: String(ports.agentPort) }),
    },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new OperationError(`the hub did not start within ${HUB_START_TIMEOUT_MS / 1000} s`));
    }, HUB_START_TIMEOUT_MS);
    child.once('message', (message: HubProcessMessage) => {
      clearTimeout(timer);
      resolve({ child, url: message.url, port: message.port, agentPort: message.agentPort });
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new OperationError(`the hub exited during start (code ${code}); its log above says why`));
    });
  });
}

/**
 * Runs the pool until a signal; resolves with the exit code.
 *
 * @example
 * await runUp(resolveConfig('pool.yaml'));
 */
export async function runUp(config: LoadedConfig): Promise<number> {
  preflight(config);
  mkdirSync(config.dataDir, { recursive: true, mode: 0o711 });
  const log = createLogger('up', config.log.level);
  let state: UpState = 'starting';
  note(`dspool: starting a pool of ${config.pool.instances} instance(s) (provider ${config.provider.type})`);
  if (config.share.mount?.type === 'sshfs') {
    // Said once at start, where the operator looks: sshfs cannot keep users apart on the share (see the README).
    note('warning: share.mount is sshfs: every file reaches the file server as one account, so users are not kept apart on the share (use NFS or SMB for that)');
  }
  let hub = await startHubProcess(config, { port: config.hub.port === 0 ? undefined : config.hub.port });
  note(`  hub listening at ${hub.url}`);
  const gatewaySecret = readFileSync(join(config.dataDir, GATEWAY_SECRET_FILE), 'utf8').trim();
  const gateway: Gateway = createGateway({
    host: config.gateway.host,
    port: config.gateway.port,
    hubUrl: hub.url,
    secret: gatewaySecret,
    allowedOrigins: config.gateway.allowedOrigins,
    headersTimeoutMs: config.gateway.headersTimeout,
    idleTimeoutMs: config.gateway.idleTimeout,
    maxConnections: config.gateway.maxConnections,
    userHost: config.gateway.userHost,
    log: createLogger('gateway', config.log.level),
  });
  let gatewayPort: number;
  try {
    gatewayPort = (await gateway.listen()).port;
  } catch (error) {
    hub.child.kill('SIGTERM');
    throw new OperationError(`the gateway cannot listen on ${config.gateway.host}:${config.gateway.port}: ${(error as Error).message}`);
  }
  let ssh: Awaited<ReturnType<typeof startSshFrontDoor>> | undefined;
  if (config.gateway.sshPort !== null) {
    try {
      ssh = await startSshFrontDoor({
        ...hubSshClient({ hubUrl: () => hub.url, secret: gatewaySecret }),
        internalKey: readFileSync(join(config.dataDir, SSH_INTERNAL_KEY_FILE), 'utf8'),
        hostKeyFile: join(config.dataDir, SSH_HOST_KEY_FILE),
        host: config.gateway.host,
        port: config.gateway.sshPort,
        log: createLogger('gateway-ssh', config.log.level),
      });
    } catch (error) {
      await gateway.close().catch(() => undefined);
      hub.child.kill('SIGTERM');
      throw new OperationError(`the SSH front door cannot listen on ${config.gateway.host}:${config.gateway.sshPort}: ${(error as Error).message}`);
    }
  }

  writeFrontDoorInfo(config.dataDir, {
    url: `http://${urlHost(config.gateway.host)}:${gatewayPort}`,
    ssh_port: ssh?.port ?? null,
    ssh_host_key: ssh?.hostPublicKey ?? null,
    pid: process.pid,
  });
  let finished!: (code: number) => void;
  const done = new Promise<number>((resolve) => (finished = resolve));
  const superviseHub = () => {
    hub.child.once('exit', (code, signal) => {
      if (state === 'stopping' || state === 'stopped') return;
      log.error({ code, signal }, 'the hub exited; restarting it (instances and open connections are kept)');
      const restart = async (attempt: number): Promise<void> => {
        try {
          hub = await startHubProcess(config, { port: hub.port, agentPort: hub.agentPort });
          note(`  hub restarted at ${hub.url}`);
          superviseHub();
        } catch (error) {
          if (state !== 'running') return;
          log.error({ err: (error as Error).message, attempt }, 'hub restart failed');
          setTimeout(() => void restart(attempt + 1), backoffMs(attempt, 500, 30_000));
        }
      };
      void restart(0);
    });
  };
  superviseHub();

  const shutdown = async (signal: string) => {
    if (state === 'stopping' || state === 'stopped') return;
    state = 'stopping';
    note(`dspool: ${signal} received; stopping servers, instances, hub and gateway…`);
    const exited = new Promise<void>((resolve) => {
      if (hub.child.exitCode !== null || hub.child.signalCode !== null) resolve();
      else hub.child.once('exit', () => resolve());
    });
    hub.child.kill('SIGTERM');
    const timer = setTimeout(() => hub.child.kill('SIGKILL'), SHUTDOWN_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
    await gateway.close().catch((error: unknown) => log.error({ err: String(error) }, 'gateway close failed'));
    await ssh?.close().catch((error: unknown) => log.error({ err: String(error) }, 'SSH front door close failed'));
    // Backstop: whatever instance the hub could not delete is deleted here, so nothing is left running.
    const provider = createProvider(config, log);
    for (const leftover of await provider.list().catch(() => [])) {
      log.warn({ instance: leftover.id }, 'instance left behind by the hub; deleting it');
      await provider.delete(leftover.id, { graceMs: 2000 }).catch(() => undefined);
    }
    await provider.close();
    state = 'stopped';
    note('dspool: stopped');
    finished(0);
  };
  process.once('SIGINT', () => void shutdown('SIGINT'));
  process.once('SIGTERM', () => void shutdown('SIGTERM'));

  try {
    // Existing machines join when their operator runs the join command: nothing to wait for here.
    if (config.provider.type === 'static') {
      note(`  ${config.provider.hosts.length} machine(s) may join: print the command with  dspool instances join-command`);
    } else if (!(await waitForPool(HubClient.forConfig(config), READY_TIMEOUT_MS, { failAfterCreateErrors: 2 }))) {
      note(`warning: not every instance was ready after ${READY_TIMEOUT_MS / 1000} s; the pool is serving with what it has`);
    }
  } catch (error) {
    // The front door still works (logins, the API); the pool keeps retrying with back-off until it is fixed.
    if (!(error instanceof OperationError)) throw error;
    note(`error: ${error.message}; serving without those instances and retrying with back-off (see dspool status)`);
  }
  if (state === 'starting') {
    state = 'running';
    const host = urlHost(config.gateway.host);
    process.stdout.write(`dspool is ready at http://${host}:${gatewayPort}/\n`);
    if (ssh) process.stdout.write(`dspool SSH front door at ssh://${host}:${ssh.port}\n`);
    note('  add a user:   dspool users add <name> --admin --password-stdin   (password on stdin)');
    if (ssh) note(`  SSH:          ssh -p ${ssh.port} <name>@${host}   (or: dspool ssh-config --install --user <name>, then ssh dspool)`);
    note('  stop:         Ctrl-C');
  }
  return done;
}

/**
 * Adds `dspool up`, which starts the pool (hub, gateway and instances) in the foreground.
 *
 * @example
 * registerUpCommand(program); // adds `dspool up`
 */
export function registerUpCommand(program: Command): void {
  program
    .command('up')
    .description('run a pool in the foreground (hub, gateway and instances); prints the address once ready')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .action(async (opts: { config?: string }) => {
      const code = await runUp(resolveConfig(opts.config));
      process.exitCode = code;
      // Everything was stopped; do not wait on a stray handle (a half-closed socket) to exit.
      setTimeout(() => process.exit(code), 300);
    });
}
