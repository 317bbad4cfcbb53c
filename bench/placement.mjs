// Placement benchmark: the hub's real InstancePool, AgentRegistry and SessionManager (from dist/) against 1,000
// simulated agents (one child process holding 1,000 WebSockets that hello, heartbeat every second and answer
// startServer at once) and 10,000 users. Reports p50/p99 per placement decision and the hub's CPU spent on
// heartbeats, as a Markdown table on stdout and in bench/results/placement.md.
//
//   npm run build && npm run bench:placement [-- --instances 1000 --users 10000 --strategy spread]
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    instances: { type: 'string', default: '1000' },
    users: { type: 'string', default: '10000' },
    strategy: { type: 'string', default: 'spread' },
    'max-sessions': { type: 'string', default: '16' },
    'heartbeat-window': { type: 'string', default: '10' },
    agents: { type: 'boolean', default: false },
  },
});

if (args.agents) await runAgents();
else await runHub();

/** Child: holds one WebSocket per simulated instance. */
async function runAgents() {
  const { default: WebSocket } = await import('ws');
  const sockets = [];
  process.on('message', (message) => {
    if (message.type !== 'join') return;
    for (const spec of message.specs) {
      const ws = new WebSocket(`${spec.hubUrl.replace('http', 'ws')}/hub/internal/agent`, {
        headers: { authorization: `Bearer ${spec.joinToken}`, 'x-dspool-instance': spec.id },
      });
      let timer;
      ws.on('open', () => {
        ws.send(JSON.stringify({
          type: 'hello', instanceId: spec.id, version: 'bench', address: '127.0.0.1',
          capacity: { cpus: 16, memoryBytes: 64 * 2 ** 30, gpus: 0 }, isolation: false,
          checks: { share: true, jupyter: true }, sshPort: null, servers: [],
        }));
      });
      ws.on('message', (data) => {
        const frame = JSON.parse(String(data));
        if (frame.type === 'welcome') {
          // Spread the beats over the interval, as real agents started at different times would.
          setTimeout(() => {
            timer = setInterval(() => ws.send(JSON.stringify({
              type: 'heartbeat', load: { cpu: Math.random(), memoryUsedBytes: 2 ** 30, memoryTotalBytes: 64 * 2 ** 30 }, servers: [],
            })), frame.heartbeatIntervalMs);
          }, Math.random() * frame.heartbeatIntervalMs);
        } else if (frame.type === 'request' && frame.method === 'startServer') {
          ws.send(JSON.stringify({ type: 'reply', id: frame.id, ok: true, result: { url: 'http://127.0.0.1:9', pid: 1 } }));
        } else if (frame.type === 'request') {
          ws.send(JSON.stringify({ type: 'reply', id: frame.id, ok: true, result: { stopped: true } }));
        }
      });
      ws.on('close', () => clearInterval(timer));
      sockets.push(ws);
    }
  });
  process.send({ type: 'ready' });
}

function percentile(sorted, p) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

/** Parent: the hub side, with the real pool, registry and session manager. */
async function runHub() {
  const dist = (p) => new URL(`../dist/${p}`, import.meta.url).href;
  const [{ AgentRegistry }, { InstancePool }, { SessionManager }, { EventLog }, { openSqliteStore }, { createLogger }] = await Promise.all([
    import(dist('hub/agents/registry.js')), import(dist('hub/instances/pool.js')), import(dist('hub/sessions/manager.js')),
    import(dist('hub/events.js')), import(dist('hub/store/sqlite.js')), import(dist('lib/log.js')),
  ]);
  const instances = Number(args.instances);
  const users = Number(args.users);
  const heartbeatIntervalMs = 1000;
  const dir = mkdtempSync(join(tmpdir(), 'dspool-bench-'));
  const log = createLogger('bench', 'silent');
  const store = openSqliteStore({ file: join(dir, 'hub.sqlite'), uidBase: 20000 });
  const events = new EventLog(store, log);

  const child = fork(fileURLToPath(import.meta.url), ['--agents'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  await new Promise((resolve) => child.once('message', resolve));
  const specs = [];
  const provider = {
    type: 'bench',
    async create(spec) {
      specs.push({ id: spec.id, hubUrl: spec.hubUrl, joinToken: spec.joinToken });
      return { id: spec.id, address: '127.0.0.1', details: {} };
    },
    async delete() {},
    async list() { return []; },
    async close() {},
  };

  let pool;
  let sessions;
  const registry = new AgentRegistry({ verifyJoin: async (id, token) => pool.verifyJoin(id, token), heartbeatIntervalMs, log });
  const server = createServer((_req, res) => res.end());
  server.on('upgrade', (req, socket, head) => void registry.handleUpgrade(req, socket, head));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const hubUrl = `http://127.0.0.1:${server.address().port}`;

  pool = new InstancePool({
    store, provider, registry, events, log, hubUrl, size: instances, deleteGraceMs: 0,
    agentSettings: { sharePath: dir, jupyter: { command: ['x'], args: [], startTimeoutMs: 1000, path: '/bin' }, logLevel: 'silent', ssh: null },
    capacity: { maxSessions: Number(args['max-sessions']) }, heartbeatIntervalMs,
    repair: { missedHeartbeats: 5, failAfterMs: 60_000, joinTimeoutMs: 120_000, maxShare: 0.34 }, drainDeadlineMs: 3_600_000,
    occupancy: { countOn: (id) => sessions.countOn(id) },
  });
  const decisions = [];
  sessions = new SessionManager({
    store, pool, registry, events, log, startTimeoutMs: 30_000, strategy: args.strategy,
    profiles: {}, defaultProfile: null, queueTimeoutMs: 600_000,
    routes: { publish() {}, unpublish() {} },
    metrics: { decision: (ms) => decisions.push(ms), waited() {} },
  });

  let ready = 0;
  pool.on('state', (view) => { if (view.state === 'ready') ready++; });
  await pool.grow();
  pool.startMonitor();
  child.send({ type: 'join', specs });
  const joinStart = Date.now();
  while (ready < instances) {
    if (Date.now() - joinStart > 120_000) throw new Error(`only ${ready} of ${instances} instances joined`);
    await new Promise((r) => setTimeout(r, 100));
  }
  // Let heartbeats settle, then measure the hub's CPU while only heartbeats arrive.
  await new Promise((r) => setTimeout(r, 2 * heartbeatIntervalMs));
  const windowS = Number(args['heartbeat-window']);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  await new Promise((r) => setTimeout(r, windowS * 1000));
  const cpu1 = process.cpuUsage(cpu0);
  const wallUs = Number(process.hrtime.bigint() - t0) / 1000;
  const heartbeatCores = (cpu1.user + cpu1.system) / wallUs;

  const userRecords = [];
  for (let i = 0; i < users; i++) userRecords.push(await store.createUser({ name: `u${i}`, admin: false, passwordHash: null }));
  const placeStart = process.hrtime.bigint();
  const batch = 200;
  for (let i = 0; i < users; i += batch) {
    const started = await Promise.all(userRecords.slice(i, i + batch).map((u) => sessions.start(u)));
    await Promise.all(started.map((s) => sessions.settled(s.id, 60_000)));
  }
  const placeS = Number(process.hrtime.bigint() - placeStart) / 1e9;
  const placedDecisions = decisions.slice();
  const sorted = placedDecisions.sort((a, b) => a - b);
  const running = sessions.routes().length;
  const perInstance = pool.list().map((v) => sessions.countOn(v.id));

  const rows = [
    ['instances (simulated agents, live heartbeats every 1 s)', String(instances)],
    ['users placed (sessions running)', `${running} of ${users}`],
    ['strategy', args.strategy],
    ['max sessions per instance', args['max-sessions']],
    ['placement decisions', String(sorted.length)],
    ['decision p50', `${percentile(sorted, 50).toFixed(3)} ms`],
    ['decision p99', `${percentile(sorted, 99).toFixed(3)} ms`],
    ['decision max', `${(sorted[sorted.length - 1] ?? 0).toFixed(3)} ms`],
    ['sessions per instance (min / max)', `${Math.min(...perInstance)} / ${Math.max(...perInstance)}`],
    ['end-to-end start throughput (store, events, agent round trip)', `${(users / placeS).toFixed(0)} sessions/s`],
    [`hub CPU for heartbeats (${windowS} s window, ${instances} beats/s)`, `${heartbeatCores.toFixed(3)} cores`],
    ['targets', `p99 ≤ 5 ms: ${percentile(sorted, 99) <= 5 ? 'met' : 'MISSED'}; heartbeats < 0.5 core: ${heartbeatCores < 0.5 ? 'met' : 'MISSED'}`],
  ];
  const table = [
    `### Placement benchmark (${new Date().toISOString().slice(0, 10)}, Node ${process.version}, ${cpus().length} CPUs: ${cpus()[0]?.model ?? '?'})`,
    '',
    '| measure | value |',
    '| --- | --- |',
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    '',
  ].join('\n');
  process.stdout.write(`${table}\n`);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL('./results/placement.md', import.meta.url), table);

  pool.stopMonitor();
  child.kill('SIGTERM');
  registry.close();
  server.close();
  server.closeAllConnections();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
  process.exit(0);
}
