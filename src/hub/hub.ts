// Wires the hub together: store, identities, provider, instance pool, sessions, the agent and gateway
// endpoints, and the HTTP API and pages on the hub's internal port.
import { createAdaptorServer } from '@hono/node-server';
import { chmodSync, mkdirSync } from 'node:fs';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { LoadedConfig } from '../config/index.js';
import type { Logger } from '../lib/log.js';
import { AGENT_PATH } from '../protocol/agent.js';
import { GATEWAY_PATH } from '../protocol/gateway.js';
import type { Provider } from '../providers/provider.js';
import { AgentRegistry } from './agents/registry.js';
import { AutoscaleController, autoscaleSettings } from './autoscale/index.js';
import { newSecret } from './auth/credentials.js';
import { IdentityService } from './auth/identity.js';
import { EventLog } from './events.js';
import { GatewayFeed } from './gateway-feed.js';
import { buildApp } from './http/app.js';
import type { HubServices } from './http/services.js';
import { InstancePool } from './instances/pool.js';
import { HubMetrics } from './metrics.js';
import { placementSettings, sessionSettings } from './settings.js';
import { ADMIN_TOKEN_FILE, STORE_FILE, ensureGatewaySecret, ensureSshInternalKey, removeRuntime, writeRuntime, writeSecretFile } from './runtime.js';
import { generateEd25519 } from '../ssh/keys.js';
import { SessionManager } from './sessions/manager.js';
import { openSqliteStore } from './store/sqlite.js';

/** Options of `startHub`. */
export interface HubOptions {
  readonly config: LoadedConfig;
  /** Makes the provider named in the config (the hub never constructs one itself). */
  readonly provider: Provider;
  readonly log: Logger;
  readonly version: string;
  /**
   * Port to listen on instead of `config.hub.port` (a restarted hub reuses the port its agents know).
   * @default config.hub.port
   */
  readonly port?: number;
  /**
   * How long `POST /hub/api/users/<name>/server` waits for the start before answering 202, in ms.
   * @default 10000
   */
  readonly spawnWaitMs?: number;
}

/** Store key of the size `dspool scale` set. */
const POOL_SIZE_SETTING = 'pool.size';

/** State of the hub process's lifecycle. */
export type HubState = 'running' | 'closing' | 'closed';

export interface RunningHub {
  readonly url: string;
  readonly port: number;
  readonly state: HubState;
  /**
   * Shuts the hub down. With `stopPool`, every server and instance is stopped first (what `dspool up` does on
   * Ctrl-C); without, instances keep running and a restarted hub re-adopts them. Safe to call twice.
   */
  close(options?: { stopPool?: boolean }): Promise<void>;
}

/**
 * Starts the hub and grows the pool to its size.
 *
 * @example
 * const hub = await startHub({ config, provider: createProvider(config, log), log, version: '0.1.0' });
 * console.log(hub.url); // http://127.0.0.1:8081
 */
export async function startHub(options: HubOptions): Promise<RunningHub> {
  const { config, provider, log } = options;
  // 0711: users' servers must traverse dataDir to reach their $HOME under the local provider's scratch dir;
  // nothing in it can be listed, the store is 0600 and secrets/ is 0700.
  mkdirSync(config.dataDir, { recursive: true, mode: 0o711 });
  chmodSync(config.dataDir, 0o711);
  mkdirSync(join(config.share.path, 'users'), { recursive: true });
  mkdirSync(join(config.share.path, 'team'), { recursive: true });
  const store = openSqliteStore({ file: join(config.dataDir, STORE_FILE), uidBase: config.users.uidBase });
  const adminToken = newSecret();
  writeSecretFile(join(config.dataDir, ADMIN_TOKEN_FILE), adminToken);
  const gatewaySecret = ensureGatewaySecret(config.dataDir, () => newSecret());
  const sshInternal = config.gateway.sshPort === null ? undefined : ensureSshInternalKey(config.dataDir, () => generateEd25519('dspool-internal'));

  const events = new EventLog(store, log);
  const metrics = new HubMetrics();
  const identities = new IdentityService({ store, adminToken, cookieMaxAgeMs: config.hub.cookieMaxAge });
  let pool!: InstancePool;
  const registry = new AgentRegistry({
    verifyJoin: async (id, token) => pool.verifyJoin(id, token),
    heartbeatIntervalMs: config.hub.heartbeatInterval,
    log,
  });
  let sessions!: SessionManager;
  const feed = new GatewayFeed({
    secret: gatewaySecret,
    routes: () => sessions.routes(),
    resolve: (kind, value) => (kind === 'cookie' ? identities.resolveCookie(value) : identities.resolveToken(value)),
    stats: (key, stats) => metrics.gateway(key, stats && { requests: stats.requests, errors: stats.errors }),
    log,
  });

  const server = createAdaptorServer({ fetch: (request: Request) => app.fetch(request) }) as Server;
  server.on('upgrade', (request, socket, head) => {
    const path = (request.url ?? '').split('?')[0];
    if (path === AGENT_PATH) void registry.handleUpgrade(request, socket, head);
    else if (path === GATEWAY_PATH) feed.handleUpgrade(request, socket, head);
    else socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? config.hub.port, config.hub.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.hub.host.includes(':') ? `[${config.hub.host}]` : config.hub.host}:${port}`;

  pool = new InstancePool({
    store, provider, registry, events, log, hubUrl: url, size: config.pool.instances, deleteGraceMs: 10_000,
    ...placementSettings(config, { countOn: (id) => sessions.countOn(id) }),
    agentSettings: {
      sharePath: config.share.path,
      jupyter: {
        command: config.jupyter.command, args: config.jupyter.args, startTimeoutMs: config.jupyter.startTimeout, path: config.jupyter.path,
      },
      logLevel: config.log.level,
      gpuCommand: config.pool.gpuCommand,
      team: { name: config.users.teamGroup, gid: config.users.teamGid },
      ssh: sshInternal ? { internalPublicKey: sshInternal.publicKey } : null,
    },
  });
  sessions = new SessionManager({
    store, pool, registry, events, log, startTimeoutMs: config.jupyter.startTimeout + 30_000,
    ...sessionSettings(config), metrics: metrics.placement,
    routes: { publish: (route) => feed.publish(route), unpublish: (user, id) => feed.unpublish(user, id) },
  });
  const autoscaler = config.pool.autoscale.enabled
    ? new AutoscaleController({
      settings: autoscaleSettings(config), pool, sessions, events, log, registry: metrics.registry, maxSessions: config.pool.capacity.maxSessions,
    })
    : undefined;
  const services: HubServices = {
    store, identities, sessions, pool, events, version: options.version, cookieMaxAgeMs: config.hub.cookieMaxAge,
    spawnWaitMs: options.spawnWaitMs ?? 10_000, revoke: (user) => feed.revoke(user), intent: (user, kind) => autoscaler?.intent(user, kind),
  };
  const scale = {
    configured: config.pool.instances,
    save: (desired: number) => store.putSetting(POOL_SIZE_SETTING, { desired, configured: config.pool.instances }),
  };
  const app = buildApp(services, log, { gatewaySecret }, { pool, sessions, metrics, scale });
  metrics.attach({ pool, sessions });
  pool.on('lost', () => metrics.repairs.inc());

  await sessions.load();
  await pool.restore();
  await sessions.prune();
  // `dspool scale` outlives a restart, unless pool.yaml's size was changed since (then the file wins).
  const scaled = (await store.getSetting(POOL_SIZE_SETTING)) as { desired: number; configured: number } | undefined;
  // With autoscaling on, the autoscaler owns the size from its first decision on.
  if (!autoscaler && scaled && scaled.configured === config.pool.instances && scaled.desired !== config.pool.instances) pool.resize(scaled.desired);
  await pool.grow();
  pool.startMonitor();
  autoscaler?.start();
  writeRuntime(config.dataDir, { hub_url: url, pid: process.pid, started: new Date().toISOString(), version: options.version });
  log.info({ url, instances: config.pool.instances }, 'hub running');

  let state: HubState = 'running';
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    get state() {
      return state;
    },
    close(closeOptions = {}) {
      closing ??= (async () => {
        state = 'closing';
        const steps: Array<[string, () => Promise<void> | void]> = [
          ['stop autoscaler', () => autoscaler?.close()],
          ['stop health monitor', () => pool.stopMonitor()],
        ];
        if (closeOptions.stopPool) {
          steps.push(['stop sessions', () => sessions.stopAll('the pool is shutting down')]);
          steps.push(['delete instances', () => pool.stopAll()]);
        }
        steps.push(
          ['close agent connections', () => registry.close()],
          ['close gateway feed', () => feed.close()],
          ['close HTTP server', () => closeServer(server)],
          ['close provider', () => provider.close()],
          ['close store', () => store.close()],
          ['remove runtime file', () => removeRuntime(config.dataDir, process.pid)],
        );
        for (const [name, step] of steps) {
          try {
            await step();
          } catch (error) {
            log.error({ step: name, err: (error as Error).message }, 'hub shutdown step failed');
          }
        }
        state = 'closed';
      })();
      return closing;
    },
  };
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
