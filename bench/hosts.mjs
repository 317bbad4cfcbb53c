#!/usr/bin/env node
// Benchmark: a user's first kernel result on a fresh host of its own and on a fresh Slurm job, against the local
// provider, in the same run; and scp through the front door to an instance on another host vs directly.
// Three `dspool up` (local and slurm with `pool.instances: 0`; static with a slot waiting for each listed host);
// rounds interleaved (order rotated), each with a new user (so each first start also creates the user's account):
//   - local: PATCH /hub/api/pool {instances: 1} → a new agent process with a new scratch dir (the closest the local
//     provider comes to a fresh machine) → ready;
//   - static: a fresh host — a network namespace made here (198.18.0.0/15, its own /etc copy, never joined before) —
//     runs the printed `dspool agent join <url> --token <t>` (a slot is waiting) → ready;
//   - slurm: PATCH {instances: 1} → sbatch → the job's agent joins from the node (a real single-node Slurm:
//     slurmctld, slurmd and munged as plain processes, the node in a namespace) → ready;
// then POST /hub/api/users/<u>/server → ready → POST api/kernels → `1+1` over the kernel WebSocket, through each
// pool's gateway. The pool then goes back to zero (the host's agent stopped, its namespace removed).
// Last, scp (upload, download) of a file through the static pool's SSH front door to the user's instance on a
// namespace host, against OpenSSH's sshd run in that same namespace, rounds interleaved.
// Prints a Markdown table (also written to bench/results/hosts.md).
//
//   npm run bench:hosts                                           # 3 rounds, 3 scp rounds of 64 MiB
//   BENCH_ROUNDS=5 BENCH_SCP_ROUNDS=5 BENCH_SCP_MB=128 npm run bench:hosts
//   BENCH_NO_SLURM=1 npm run bench:hosts                          # without the Slurm column
// Must run as root (namespaces, Unix accounts, sshd). Loopback and 198.18.0.0/15 inside namespaces made here only;
// every process started here is stopped by PID (`dspool up` with SIGINT: it stops its instances), the namespaces,
// temp dirs and the Unix accounts the local pool made are removed at the end.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { SLURM_BINARIES, SlurmCluster, api, firstKernelResult, freePort, inHost, makeNetns, netnsPids, privateEtc, rand, removeNetns, stopPid } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'dspool.js');
const SSHD = '/usr/sbin/sshd';
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const SCP_ROUNDS = Number(process.env.BENCH_SCP_ROUNDS ?? 3);
const SCP_MB = Number(process.env.BENCH_SCP_MB ?? 64);
const STEP_TIMEOUT_MS = 120_000;
const POLL_MS = 50;
const TAG = `q${rand()}`;
const log = (...args) => console.error(...args);

if (process.getuid?.() !== 0) {
  log('bench:hosts must run as root (network namespaces, Unix accounts, sshd)');
  process.exit(2);
}
for (const need of ['/usr/bin/jupyter-notebook', SSHD, '/usr/bin/scp', join(ROOT, 'dist/hub/main.js')]) {
  if (!existsSync(need)) {
    log(`bench:hosts: ${need} is missing (run it as npm run bench:hosts, which installs what it needs and builds)`);
    process.exit(2);
  }
}
const slurmSkip = process.env.BENCH_NO_SLURM ? 'BENCH_NO_SLURM is set' : SLURM_BINARIES.filter((f) => !existsSync(f)).map((f) => `${f} is missing`).join(', ') || undefined;

// ── what this run made, for the cleanup ──
const tempDirs = [];
const namespaces = [];
const pids = new Set();
const pools = [];
const localUsers = [];
let cluster;

function tempDir(prefix) {
  const dir = mkdtempSync(join(os.tmpdir(), `${prefix}-${TAG}-`));
  chmodSync(dir, 0o755);
  tempDirs.push(dir);
  return dir;
}
/** A short path (kernels' IPC sockets live below an instance's scratch dir; a socket path holds 107 bytes). */
function shortDir() {
  const dir = `/tmp/dh${rand()}`;
  tempDirs.push(dir);
  return dir;
}

async function waitUntil(what, probe, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(POLL_MS);
  }
}

/** Starts `dspool up` with these pool.yaml lines; resolves once it printed its address. */
async function startPool(name, lines) {
  const dir = tempDir(`dspool-hosts-${name}`);
  const config = join(dir, 'pool.yaml');
  const uidBase = 40000 + Math.floor(Math.random() * 2000) * 10;
  writeFileSync(config, [
    'dataDir: ./state',
    'share: { path: ./share }',
    ...lines,
    `users: { uidBase: ${uidBase}, teamGroup: tg${TAG}${name[0]} }`,
    'log: { level: warn }',
    '',
  ].join('\n'));
  const child = spawn(process.execPath, [BIN, 'up', '--config', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  const pool = { name, dir, config, child, url: '', sshPort: 0, output: '' };
  pools.push(pool);
  child.stderr.on('data', (d) => (pool.output = (pool.output + d).slice(-30_000)));
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name}: dspool not ready in 120 s:\n${pool.output}`)), 120_000);
    child.stdout.on('data', (d) => {
      pool.output += d;
      const url = /dspool is ready at (http:\/\/\S+?)\/?\s/.exec(pool.output);
      const ssh = /dspool SSH front door at ssh:\/\/\S+:(\d+)/.exec(pool.output);
      if (url && (ssh || !lines.some((l) => l.includes('sshPort: 0')))) {
        clearTimeout(timer);
        pool.url = url[1];
        pool.sshPort = Number(ssh?.[1] ?? 0);
        resolve();
      }
    });
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`${name}: dspool up exited with ${code}:\n${pool.output}`))));
  });
  pool.cli = (args, stdin = '') => {
    const r = spawnSync(process.execPath, [BIN, ...args, '--config', config], { cwd: dir, input: stdin, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`${name}: dspool ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r.stdout.trim();
  };
  pool.api = (path, { method = 'GET', token = pool.admin, body } = {}) => {
    const request = () => api(pool.url, path, { method, token, body, timeoutMs: STEP_TIMEOUT_MS });
    // Once more when a kept-alive connection was closed by the server just as it was reused (every call here is
    // safe to repeat: reads, a pool size, a server start or stop).
    return request().catch((error) => {
      log(`${name}: ${method} ${path}: ${error.message} (${error.cause?.code ?? error.cause?.message ?? '?'}); once more`);
      return request();
    });
  };
  pool.addUser = (user, admin = false) => {
    pool.cli(['users', 'add', user, ...(admin ? ['--admin'] : []), '--password-stdin'], `${randomBytes(12).toString('hex')}\n`);
    if (name === 'local') localUsers.push(user);
    return pool.cli(['token', user]);
  };
  pool.instances = async () => (await pool.api('/hub/api/instances')).json ?? [];
  pool.scale = async (instances) => {
    const r = await pool.api('/hub/api/pool', { method: 'PATCH', body: { instances } });
    if (r.status !== 200 && r.status !== 202) throw new Error(`${name}: scale to ${instances}: ${r.status} ${r.text}`);
  };
  pool.admin = pool.addUser(`${TAG}${name[0]}r`, true);
  return pool;
}

/** The one instance that is `ready` (matching `where`), once it is. */
const readyInstance = (pool, where = () => true) =>
  waitUntil(`${pool.name}: an instance ready`, async () => (await pool.instances()).find((i) => i.state === 'ready' && where(i)));

/** A static pool's host: a namespace with its own /etc, joined with a freshly printed join command. */
async function joinHost(pool, host) {
  const printed = pool.cli(['instances', 'join-command']);
  const match = /^dspool agent join (\S+) --token (\S+)$/.exec(printed);
  if (!match) throw new Error(`join-command printed ${JSON.stringify(printed)}`);
  const dir = join(pool.dir, 'hosts', host.name);
  mkdirSync(dir, { recursive: true });
  const etc = privateEtc(dir);
  const [file, argv] = inHost(host, etc, [process.execPath, BIN, 'agent', 'join', match[1], '--token', match[2], '--state-dir', join(dir, 'state'), '--scratch-dir', shortDir(), '--log-level', 'warn']);
  const t0 = performance.now();
  const agent = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
  pids.add(agent.pid);
  agent.stderr.on('data', (d) => (pool.output = (pool.output + `[${host.name}] ${d}`).slice(-30_000)));
  return { t0, agent };
}

/** One measured start on `pool` for a new user: returns the phases in ms. */
async function measure(pool, host) {
  const user = `${TAG}${pool.name[0]}${rand()}`;
  const token = pool.addUser(user);
  let t0;
  let agent;
  if (pool.name === 'static') {
    // A static pool has a slot per listed host, waiting for its machine to join.
    ({ t0, agent } = await joinHost(pool, host));
  } else {
    t0 = performance.now();
    await pool.scale(1);
  }
  await readyInstance(pool, (i) => !host || i.address === host.address);
  const tInstance = performance.now();
  const r = await firstKernelResult(pool.url, user, token, { timeoutMs: STEP_TIMEOUT_MS, pollMs: POLL_MS });
  // Back to zero: the server stopped, the pool scaled in (the instance drained and removed, the job cancelled); a
  // static host is switched off (its agent stopped, its namespace removed; the next round's host takes another slot).
  await pool.api(`/hub/api/users/${user}/server`, { method: 'DELETE', token });
  await waitUntil(`${pool.name}: ${user}'s server gone`, async () => Object.keys((await pool.api(`/hub/api/users/${user}`, { token })).json?.servers ?? {}).length === 0);
  if (!agent) {
    await pool.scale(0);
    await waitUntil(`${pool.name}: an empty pool`, async () => (await pool.instances()).length === 0);
  } else {
    await stopPid(agent.pid);
    pids.delete(agent.pid);
    for (const pid of netnsPids(host)) await stopPid(pid, 2000);
    removeNetns(host);
  }
  return { instance: tInstance - t0, server: r.tReady - r.tPost, placed: r.phases.placed, forked: r.phases.forked ?? r.phases.exec, result: r.tResult - r.tReady, total: r.tResult - t0 };
}

// ── scp: front door → instance on a namespace host, vs OpenSSH's sshd in that namespace ──
const SSH_COMMON = (key) => ['-F', '/dev/null', '-q', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=60', '-i', key];

function run(file, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    pids.add(child.pid);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      pids.delete(child.pid);
      if (code === 0) resolve();
      else reject(new Error(`${file} ${args.slice(-2).join(' ')} exited ${code}: ${stderr}`));
    });
  });
}

async function scpBench(pool, host) {
  const dir = tempDir('dspool-hosts-scp');
  const key = join(dir, 'client_key');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'host_key')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(`${key}.pub`), { mode: 0o600 });
  // The pool user, placed on the namespace host's instance.
  const user = `${TAG}s${rand()}`;
  const token = pool.addUser(user);
  pool.cli(['users', 'keys', 'add', user, `${key}.pub`]);
  const { agent } = await joinHost(pool, host);
  await readyInstance(pool, (i) => i.address === host.address);
  const started = await pool.api(`/hub/api/users/${user}/server`, { method: 'POST', token });
  if (started.status !== 201 && started.status !== 202) throw new Error(`scp: start ${user}: ${started.status} ${started.text}`);
  await waitUntil(`scp: ${user}'s server ready`, async () => (await pool.api(`/hub/api/users/${user}`, { token })).json?.servers?.['']?.ready);
  // OpenSSH's sshd in the same namespace, on the host's address.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const port = await freePort();
  const sshdConfig = join(dir, 'sshd_config');
  writeFileSync(sshdConfig, [
    `ListenAddress ${host.address}:${port}`, `HostKey ${join(dir, 'host_key')}`, `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
    `PidFile ${join(dir, 'sshd.pid')}`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no',
    'UsePAM no', 'StrictModes no', 'Subsystem sftp /usr/lib/openssh/sftp-server', 'LogLevel ERROR', '',
  ].join('\n'));
  const sshd = spawn('nsenter', [`--net=/run/netns/${host.name}`, SSHD, '-D', '-e', '-f', sshdConfig], { stdio: ['ignore', 'ignore', 'inherit'] });
  pids.add(sshd.pid);
  const common = SSH_COMMON(key);
  const landing = join(dir, 'direct');
  mkdirSync(landing);
  const targets = [
    { name: 'front door', args: ['-P', String(pool.sshPort)], at: `${user}@127.0.0.1:`, file: (f) => join(pool.dir, 'share', 'users', user, 'home', f) },
    { name: 'direct', args: ['-P', String(port)], at: `root@${host.address}:${landing}/`, file: (f) => join(landing, f) },
  ];
  await waitUntil('sshd in the namespace', () => run('ssh', [...common, '-p', String(port), `root@${host.address}`, 'true']).then(() => true, () => false), 30_000);

  const source = join(dir, 'payload.bin');
  const out = createWriteStream(source);
  for (let i = 0; i < SCP_MB; i++) out.write(randomBytes(1024 * 1024));
  await new Promise((resolve) => out.end(resolve));
  const sum = createHash('sha256').update(readFileSync(source)).digest('hex');
  const results = Object.fromEntries(targets.map((t) => [t.name, { up: [], down: [], connect: [] }]));
  for (let round = 0; round < SCP_ROUNDS; round++) {
    for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
      const name = `up-${round}.bin`;
      // What every scp below pays once: connect, authenticate, run a command (through the front door: two handshakes).
      let t0 = performance.now();
      await run('ssh', [...common, '-p', t.args[1], t.at.split(':')[0], 'true']);
      results[t.name].connect.push(performance.now() - t0);
      t0 = performance.now();
      await run('scp', [...common, ...t.args, source, `${t.at}${name}`]);
      results[t.name].up.push(SCP_MB / ((performance.now() - t0) / 1000));
      if (statSync(t.file(name)).size !== SCP_MB * 1024 * 1024) throw new Error(`${t.name}: upload size mismatch`);
      const back = join(dir, `down-${round}.bin`);
      t0 = performance.now();
      await run('scp', [...common, ...t.args, `${t.at}${name}`, back]);
      results[t.name].down.push(SCP_MB / ((performance.now() - t0) / 1000));
      if (round === 0 && createHash('sha256').update(readFileSync(back)).digest('hex') !== sum) throw new Error(`${t.name}: checksum mismatch`);
      rmSync(t.file(name), { force: true });
      rmSync(back, { force: true });
    }
    log(`scp round ${round + 1}: front door ↑${results['front door'].up.at(-1).toFixed(0)} ↓${results['front door'].down.at(-1).toFixed(0)} MB/s, direct ↑${results.direct.up.at(-1).toFixed(0)} ↓${results.direct.down.at(-1).toFixed(0)} MB/s`);
  }
  await stopPid(sshd.pid);
  pids.delete(sshd.pid);
  await pool.api(`/hub/api/users/${user}/server`, { method: 'DELETE', token });
  await stopPid(agent.pid);
  pids.delete(agent.pid);
  return results;
}

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (ms) => (ms === undefined ? '—' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);
const ratio = (a, b) => (a === undefined || b === undefined ? '—' : `${(a / b).toFixed(2)}×`);

async function cleanup() {
  for (const pool of pools) {
    if (pool.child.exitCode !== null) continue;
    // The local pool's agents, by PID: `dspool up` stops them, unless one was still being created when it was told to.
    if (pool.name === 'local') for (const i of await pool.instances().catch(() => [])) if (i.provider?.pid) pids.add(i.provider.pid);
    const exited = once(pool.child, 'exit');
    pool.child.kill('SIGINT');
    const timer = setTimeout(() => pool.child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
  }
  for (const pid of pids) await stopPid(pid, 5000);
  for (const ns of namespaces) {
    for (const pid of netnsPids(ns)) await stopPid(pid, 2000);
    removeNetns(ns);
  }
  await cluster?.stop();
  for (const user of localUsers) {
    spawnSync('userdel', [user], { stdio: 'ignore' });
    spawnSync('groupdel', [user], { stdio: 'ignore' });
  }
  spawnSync('groupdel', [`tg${TAG}l`], { stdio: 'ignore' });
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
}

let exitCode = 0;
process.on('SIGINT', () => void cleanup().finally(() => process.exit(130)));
try {
  // One namespace holds the hub's agent listener for the static pool (and serves as the scp host at the end);
  // each round's host is made fresh.
  const scpHost = makeNetns();
  namespaces.push(scpHost);
  const roundHosts = Array.from({ length: ROUNDS }, () => {
    const ns = makeNetns();
    namespaces.push(ns);
    return ns;
  });
  const hub = (extra) => `hub: { host: 127.0.0.1, port: 0, heartbeatInterval: 1s${extra} }`;
  const local = await startPool('local', ['gateway: { host: 127.0.0.1, port: 0, sshPort: null }', hub(''), 'provider: { type: local }', 'pool: { instances: 0 }']);
  const stat = await startPool('static', [
    'gateway: { host: 127.0.0.1, port: 0, sshPort: 0 }',
    hub(`, privateNetwork: true, agentAddress: "${scpHost.hostAddress}:0"`),
    `provider: { type: static, hosts: [${[scpHost, ...roundHosts].map((h) => h.address).join(', ')}] }`,
  ]);
  const targets = [local, stat];
  if (slurmSkip) log(`bench:hosts: no Slurm column: ${slurmSkip}`);
  else {
    cluster = new SlurmCluster();
    await cluster.start();
    targets.push(await startPool('slurm', [
      'gateway: { host: 127.0.0.1, port: 0, sshPort: null }',
      `hub: { host: ${cluster.ns.hostAddress}, port: 0, heartbeatInterval: 1s, privateNetwork: true }`,
      `provider: { type: slurm, partition: ${cluster.partition}, timeLimit: "60", slurmConf: ${cluster.conf}, scratchDir: ${shortDir()}, pollInterval: 1s }`,
      'pool: { instances: 0 }',
    ]));
  }
  const results = Object.fromEntries(targets.map((p) => [p.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = targets.map((_, i) => targets[(i + round) % targets.length]);
    for (const pool of order) results[pool.name].push(await measure(pool, pool.name === 'static' ? roundHosts[round] : undefined));
    log(`round ${round + 1}: ${targets.map((p) => `${p.name} ${fmt(results[p.name].at(-1).total)} (instance ${fmt(results[p.name].at(-1).instance)})`).join(', ')}`);
  }
  const scp = await scpBench(stat, scpHost);

  const m = (name, key) => {
    const values = (results[name] ?? []).map((r) => r[key]).filter((v) => v !== undefined);
    return values.length > 0 ? median(values) : undefined;
  };
  const slowest = (name) => (results[name] ? Math.max(...results[name].map((r) => r.total)) : undefined);
  const rows = [
    ['instance ready (local, Slurm: scale-out; static: join command run)', 'instance'],
    ['server ready (POST → ready)', 'server'],
    ['  · placed on the instance (from the POST)', 'placed'],
    ['  · server process forked (from the POST)', 'forked'],
    ['kernel + first `1+1` result', 'result'],
    ['**start → first kernel result**', 'total'],
  ].map(([label, key]) => [label, m('local', key), m('static', key), m('slurm', key)]);
  rows.push(['slowest round, start → first result', slowest('local'), slowest('static'), slowest('slurm')]);
  const door = scp['front door'];
  const direct = scp.direct;
  const f1 = (x) => x.toFixed(1);
  const table = [
    `| phase (median of ${ROUNDS} interleaved rounds, a new user each) | local | static: fresh host (netns) | Slurm: fresh job | static / local | Slurm / local |`,
    '|---|---:|---:|---:|---:|---:|',
    ...rows.map(([label, l, s, j]) => `| ${label} | ${fmt(l)} | ${fmt(s)} | ${fmt(j)} | ${ratio(s, l)} | ${ratio(j, l)} |`),
    '',
    `| scp of ${SCP_MB} MiB, connection included (median of ${SCP_ROUNDS} interleaved rounds) | upload MB/s | download MB/s | \`ssh host true\` |`,
    '|---|---:|---:|---:|',
    `| direct: OpenSSH sshd in the host's namespace | ${f1(median(direct.up))} | ${f1(median(direct.down))} | ${fmt(median(direct.connect))} |`,
    `| front door → the user's instance on that host | ${f1(median(door.up))} | ${f1(median(door.down))} | ${fmt(median(door.connect))} |`,
    `| front door / direct (MB/s; for \`ssh host true\`, time) | ${ratio(median(door.up), median(direct.up))} | ${ratio(median(door.down), median(direct.down))} | ${ratio(median(door.connect), median(direct.connect))} |`,
  ].join('\n');
  const header = `Hosts benchmark — ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}, node ${process.version}${slurmSkip ? `; no Slurm: ${slurmSkip}` : ''}.`;
  console.log(`${header}\n\n${table}`);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'hosts.md'), `${header}\n\n${table}\n`);
} catch (error) {
  log(`bench:hosts failed: ${error.stack ?? error}`);
  for (const pool of pools) log(`--- ${pool.name} output ---\n${pool.output.slice(-4000)}`);
  exitCode = 1;
} finally {
  await cleanup();
}
process.exit(exitCode);
