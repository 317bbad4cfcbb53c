// Wires the hub together: store, identities, provider, instance pool, sessions, the agent and gateway
// endpoints, and the HTTP API and pages on the hub's internal port.
import { createAdaptorServer } from '@hono/node-server';
import { chmodSync, mkdirSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { LoadedConfig } from '../config/index.js';
import { urlHost } from '../lib/address.js';
import type { Logger } from '../lib/log.js';
import { AGENT_PATH, JOIN_PATH } from '../protocol/agent.js';
import { JoinService } from './instances/join.js';
import { GATEWAY_PATH } from '../protocol/gateway.js';
import type { Provider } from '../providers/provider.js';
import { AgentRegistry } from './agents/registry.js';
import { accountPolicy } from './auth/account-policy.js';
import { AutoscaleController, autoscaleSettings } from './autoscale/index.js';
import { newSecret } from './auth/credentials.js';
import { IdentityService } from './auth/identity.js';
import { LoginGuard } from './auth/login-guard.js';
import { UserHostLogins } from './auth/user-host.js';
import { EventLog } from './events.js';
import { GatewayFeed } from './gateway-feed.js';
import { buildApp } from './http/app.js';
import type { HubServices } from './http/services.js';
import { InstancePool } from './instances/pool.js';
import { HubMetrics } from './metrics.js';
import { cullSettings, placementSettings, sessionSettings, shareMountSettings } from './settings.js';
import { Culler } from './cull/index.js';
import { PoolHistory, sizesFromEvents } from './admin/history.js';
import { ensureTlsIdentity } from '../lib/tls.js';
import { ADMIN_TOKEN_FILE, AGENT_TLS_CERT_FILE, AGENT_TLS_KEY_FILE, STORE_FILE, ensureGatewaySecret, ensureSshInternalKey, removeRuntime, writeRuntime, writeSecretFile } from './runtime.js';
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
   * Port for the agents' listener instead of the one in `config.hub.agentAddress` (a restarted hub reuses the port
   * its agents dial, also when the configured one is 0).
   * @default the port of config.hub.agentAddress
   */
  readonly agentPort?: number;
  /**
   * How long `POST /hub/api/users/<name>/server` waits for the start before answering 202, in ms.
   * @default 10000
   */
  readonly spawnWaitMs?: number;
}

/** Store key of the size `dspool scale` set. */
const POOL_SIZE_SETTING = 'pool.size';
/** Store key of the users an admin exempted from idle culling. */
const CULL_EXEMPT_SETTING = 'cull.exempt';

/** State of the hub process's lifecycle. */
export type HubState = 'running' | 'closing' | 'closed';

export interface RunningHub {
  readonly url: string;
  readonly port: number;
  /** The agents' listener port (`hub.agentAddress`); absent without one. */
  readonly agentPort: number | undefined;
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
  // With share.mount the agents mount the share and lay it out; the hub writes nothing under share.path (on its
  // machine that may be the empty directory under a mount that is not there).
  if (!config.share.mount) {
    mkdirSync(join(config.share.path, 'users'), { recursive: true });
    mkdirSync(join(config.share.path, 'team'), { recursive: true });
  }
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
    personRequest: (user, atMs) => culler.personRequest(user, atMs),
    log,
  });

  const joins = new JoinService({ provider, store, events, log });
  // Machines joining on their own (`dspool agent join`) post here, on the hub's port and on the agents' one.
  const joinFetch = async (request: Request, env: { incoming?: { socket?: { remoteAddress?: string } } }): Promise<Response> => {
    const body = await request.json().catch(() => undefined);
    const reply = await joins.join(body, env.incoming?.socket?.remoteAddress ?? '');
    return Response.json(reply.body, { status: reply.status });
  };
  const isJoin = (request: Request): boolean => request.method === 'POST' && new URL(request.url).pathname === JOIN_PATH;
  const server = createAdaptorServer({
    fetch: (request: Request, env: { incoming?: { socket?: { remoteAddress?: string } } }) => (isJoin(request) ? joinFetch(request, env) : app.fetch(request, env)),
  }) as Server;
  server.on('upgrade', (request, socket, head) => {
    const path = (request.url ?? '').split('?')[0];
    if (path === AGENT_PATH) void registry.handleUpgrade(request, socket, head);
    else if (path === GATEWAY_PATH) feed.handleUpgrade(request, socket, head);
    else socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
  });
  await listen(server, options.port ?? config.hub.port, config.hub.host);
  const port = (server.address() as AddressInfo).port;
  const url = `http://${urlHost(config.hub.host)}:${port}`;
  // hub.agentAddress: a second listener for agents only (their WebSocket and the join), e.g. on the instances' network.
  // It serves TLS (a self-signed certificate made once in dataDir, pinned by agents) unless hub.privateNetwork.
  let agentServer: Server | undefined;
  let agentUrl = url;
  let agentTls: { key: string; cert: string; fingerprint: string } | undefined;
  if (config.hub.agentAddress) {
    const split = config.hub.agentAddress.lastIndexOf(':');
    const agentHost = config.hub.agentAddress.slice(0, split).replace(/^\[|\]$/g, '');
    if (!config.hub.privateNetwork) agentTls = ensureTlsIdentity(join(config.dataDir, AGENT_TLS_KEY_FILE), join(config.dataDir, AGENT_TLS_CERT_FILE), 'dspool hub');
    agentServer = createAdaptorServer({
      fetch: (request: Request, env: { incoming?: { socket?: { remoteAddress?: string } } }) =>
        isJoin(request) ? joinFetch(request, env) : new Response('only agents are served here\n', { status: 404 }),
      ...(agentTls ? { createServer: createHttpsServer, serverOptions: { key: agentTls.key, cert: agentTls.cert, minVersion: 'TLSv1.2' as const } } : {}),
    }) as Server;
    agentServer.on('upgrade', (request, socket, head) => {
      if ((request.url ?? '').split('?')[0] === AGENT_PATH) void registry.handleUpgrade(request, socket, head);
      else socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    });
    await listen(agentServer, options.agentPort ?? Number(config.hub.agentAddress.slice(split + 1)), agentHost);
    agentUrl = `${agentTls ? 'https' : 'http'}://${urlHost(agentHost)}:${(agentServer.address() as AddressInfo).port}`;
  }

  pool = new InstancePool({
    store, provider, registry, events, log, hubUrl: agentUrl, size: config.pool.instances, deleteGraceMs: 10_000,
    ...placementSettings(config, { countOn: (id) => sessions.countOn(id) }),
    agentSettings: {
      sharePath: config.share.path,
      ...shareMountSettings(config.share),
      jupyter: {
        command: config.jupyter.command, args: config.jupyter.args, startTimeoutMs: config.jupyter.startTimeout, path: config.jupyter.path,
        forkServer: config.jupyter.forkServer,
      },
      logLevel: config.log.level,
      gpuCommand: config.pool.gpuCommand,
      team: { name: config.users.teamGroup, gid: config.users.teamGid },
      ssh: sshInternal ? { internalPublicKey: sshInternal.publicKey } : null,
      ...(agentTls ? { hubFingerprint: agentTls.fingerprint } : {}),
      // Instances on other machines: users' servers only on their loopback, reached through the agent's TLS relay.
      ...(config.provider.type !== 'local' && !config.hub.privateNetwork ? { relay: true } : {}),
    },
  });
  sessions = new SessionManager({
    store, pool, registry, events, log, startTimeoutMs: config.jupyter.startTimeout + 30_000,
    ...sessionSettings(config), metrics: metrics.placement, stopping: (cause) => metrics.stops.inc({ cause }),
    routes: { publish: (route) => feed.publish(route), unpublish: (user, id) => feed.unpublish(user, id) },
  });
  const { window: windowMs, maxWait: maxWaitMs, maxConcurrent, ...loginLimit } = config.hub.loginLimit;
  const logins = new LoginGuard({ identities, events }, { windowMs, maxWaitMs, maxConcurrent: maxConcurrent ?? undefined, ...loginLimit });
  const culler = new Culler({
    running: () => sessions.running(),
    stop: (user, reason) => sessions.stop(user, reason, 'idle'),
    notify: async (instanceId, user, message) => {
      await registry.get(instanceId)?.request('notify', { user, message: message.slice(0, 500) }, 10_000);
    },
    exemptions: {
      load: async () => ((await store.getSetting(CULL_EXEMPT_SETTING)) as string[] | undefined) ?? [],
      save: (users) => store.putSetting(CULL_EXEMPT_SETTING, users),
    },
    keepExtension: (sessionId, until) => sessions.keepExtension(sessionId, until),
    registry: metrics.registry,
    events, log, now: Date.now, ...cullSettings(config),
  });
  sessions.showCullFields((id) => culler.fieldsOf(id));
  pool.on('joined', (_id, hello, connection) => {
    culler.report(hello.servers);
    connection.on('heartbeat', (beat) => culler.report(beat.servers));
  });
  // The pool's size over the last day, for the admin page: on every instance change, and every 5 minutes.
  const history = new PoolHistory(86_400_000, 300_000);
  const sample = (): void => history.record(Date.now(), pool.list().filter((v) => v.state !== 'deleted').length, pool.ready().length);
  pool.on('state', sample);
  const sampler = setInterval(sample, 60_000);
  sampler.unref();
  const autoscaler = config.pool.autoscale.enabled
    ? new AutoscaleController({
      settings: autoscaleSettings(config), pool, sessions, events, log, registry: metrics.registry, maxSessions: config.pool.capacity.maxSessions,
    })
    : undefined;
  const services: HubServices = {
    history, culler, store, identities, logins, gatewaySecret, sessions, userHost: config.gateway.userHost, hostLogins: new UserHostLogins({ store }), pool, events, version: options.version, cookieMaxAgeMs: config.hub.cookieMaxAge,
    spawnWaitMs: options.spawnWaitMs ?? 10_000, revoke: (user) => feed.revoke(user), maxBodyBytes: config.hub.maxBodySize,
    intent: (user, kind) => autoscaler?.intent(user, kind),
    accounts: accountPolicy({
      uidBase: config.users.uidBase, passwordMinLength: config.users.passwordMinLength,
      // Only a pool run as root makes Unix accounts on this machine (its local instances run servers as them).
      checkSystemAccounts: process.getuid?.() === 0,
      reservedNames: [config.users.teamGroup],
    }),
  };
  const scale = {
    configured: config.pool.instances,
    save: (desired: number) => store.putSetting(POOL_SIZE_SETTING, { desired, configured: config.pool.instances }),
  };
  const app = buildApp(services, log, { gatewaySecret }, { pool, sessions, metrics, scale }, { joins, agentUrl, ...(agentTls ? { agentFingerprint: agentTls.fingerprint } : {}) });
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
  await culler.start();
  sample();
  // The chart's earlier part, from the event log (a restarted hub still shows the day).
  const current = new Map(pool.list().map((v) => [v.id, v.state as string]));
  history.preload(sizesFromEvents(current, await store.listEvents({ limit: 100_000 }), Date.now() - 86_400_000));
  autoscaler?.start();
  writeRuntime(config.dataDir, { hub_url: url, pid: process.pid, started: new Date().toISOString(), version: options.version });
  log.info({ url, agentUrl, instances: config.pool.instances }, 'hub running');

  let state: HubState = 'running';
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    agentPort: agentServer ? (agentServer.address() as AddressInfo).port : undefined,
    get state() {
      return state;
    },
    close(closeOptions = {}) {
      closing ??= (async () => {
        state = 'closing';
        const steps: Array<[string, () => Promise<void> | void]> = [
          ['stop autoscaler', () => autoscaler?.close()],
          ['stop health monitor', () => pool.stopMonitor()],
          ['stop idle culler', () => culler.stop()],
          ['stop size sampler', () => clearInterval(sampler)],
        ];
        if (closeOptions.stopPool) {
          steps.push(['stop sessions', () => sessions.stopAll('the pool is shutting down')]);
          steps.push(['delete instances', () => pool.stopAll()]);
        }
        steps.push(
          ['close agent connections', () => registry.close()],
          ['close gateway feed', () => feed.close()],
          ['close HTTP server', () => closeServer(server)],
          ['close agent listener', () => (agentServer ? closeServer(agentServer) : undefined)],
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

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
