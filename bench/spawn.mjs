#!/usr/bin/env node
// Benchmark: dspool against JupyterHub 3.0 (Debian `jupyterhub`), both running the same Debian Jupyter Notebook 6
// and the same Python kernel (/usr/bin/python3 + ipykernel), each reached through its own front door (dspool's
// gateway; JupyterHub's configurable-http-proxy). Measures, over interleaved rounds (dspool, JupyterHub, …):
//   1. cold start → first kernel result, one user: POST /hub/api/users/<u>/server, wait until ready, create a
//      kernel (POST /user/<u>/api/kernels), run `1+1` over its WebSocket; the server is stopped between rounds;
//   2. the same for 10 users at once (time until all 10 have their result);
//   3. kernel execute round trips over the WebSocket (N sequential tiny cells, p50/p99).
// Prints a Markdown table (also written to bench/results/spawn.md).
//
//   npm run bench:spawn                                  # 5 rounds, 3 rounds of 10 users, 50 executes per round
//   BENCH_ROUNDS=3 BENCH_MULTI_ROUNDS=2 BENCH_USERS=10 BENCH_EXECUTES=50 npm run bench:spawn
//   BENCH_REF=HEAD npm run bench:spawn                   # measure a commit (when the working tree is mid-edit)
//   BENCH_NO_BUILD=1 npm run bench:spawn                 # measure dist/ as it is
//   BENCH_CPU=1 npm run bench:spawn                      # also: CPU seconds per kind of process in each 10-user round
//   BENCH_PRODUCTS=dspool BENCH_CPU=1 npm run bench:spawn  # profiling dspool alone (no JupyterHub column)
// dspool is always run from a private snapshot of its build (see prepareCode). Four to five minutes on 2 cores.
// After a failure both products' logs (dspool's agent and Jupyter logs too) are kept in bench/results/.
//
// Must run as root (dspool creates real Unix accounts for its users; JupyterHub's SimpleLocalProcessSpawner runs
// every server as the caller). Installs Debian's `jupyterhub` with apt-get when missing. Loopback only; every
// process started here (pools, hubs, proxies, Jupyter servers, kernels) is stopped by PID at the end, the temp
// dirs are removed and the Unix accounts dspool made are deleted.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { randomBytes } from 'node:crypto';
import WebSocket from 'ws';
import { api, followProgress, freePort } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
/** dspool's CLI: a private snapshot of the build (see prepareCode), so a rebuild by someone else mid-run changes nothing. */
let BIN = join(ROOT, 'bin', 'dspool.js');
/** What was measured: commit and how dist/ was obtained. */
let CODE = '';
const CHP = join(ROOT, 'node_modules/.bin/configurable-http-proxy');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const MULTI_ROUNDS = Number(process.env.BENCH_MULTI_ROUNDS ?? 3);
const USERS = Number(process.env.BENCH_USERS ?? 10);
const EXECUTES = Number(process.env.BENCH_EXECUTES ?? 50);
/** Bound on any single wait (a start, a stop, a kernel reply). */
const STEP_TIMEOUT_MS = 90_000;
/** How often both products' user models are polled while a server starts or stops. */
const POLL_MS = 50;
/** PATH for both products: Debian's Python first (not a pyenv shim), and the npm configurable-http-proxy. */
const PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin', join(ROOT, 'node_modules/.bin')].join(':');
const TAG = `b${randomBytes(3).toString('hex')}`; // unique per run: user names, temp dirs

/** Every top-level process started here. */
const children = new Set();
/** Every process seen under one of them (servers, kernels, the proxy): PID → start time (so a reused PID is spared). */
const descendants = new Map();
const tempDirs = [];
const unixUsers = new Set();

const log = (...args) => console.error(...args);
/** `BENCH_CPU=1`: after each crowd round, print the CPU seconds each kind of process used (where the time goes). */
const CPU = process.env.BENCH_CPU === '1';
/** `BENCH_PRODUCTS=dspool`: measure dspool alone (profiling; the table then has no JupyterHub column to compare). */
const ONLY_DSPOOL = process.env.BENCH_PRODUCTS === 'dspool';

// ---------------------------------------------------------------------------------------------------------------
// Processes

function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}

/**
 * The fields of `/proc/<pid>/stat` after the command name (which may hold spaces and parentheses): [0] state,
 * [1] ppid, [11..14] utime stime cutime cstime, [19] start time; undefined when the process is gone.
 */
function statFields(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** A process's start time (clock ticks since boot), or undefined when it is gone. */
const startTime = (pid) => statFields(pid)?.[19];

/** Every live process whose ancestry includes one of `roots` (from /proc): PID → start time. */
function processTree(roots) {
  const parent = new Map();
  const started = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = statFields(entry);
    if (!fields) continue; // gone meanwhile
    parent.set(Number(entry), Number(fields[1]));
    started.set(Number(entry), fields[19]);
  }
  const found = new Map();
  for (const pid of parent.keys()) {
    for (let p = pid, hops = 0; p > 1 && hops < 64; p = parent.get(p) ?? 0, hops++) {
      if (roots.has(p)) {
        found.set(pid, started.get(pid));
        break;
      }
    }
  }
  return found;
}

function collectDescendants() {
  const roots = new Set([...children].map((c) => c.pid));
  for (const [pid, start] of processTree(roots)) {
    if (descendants.get(pid)?.start === start) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim().slice(0, 160);
    } catch {}
    descendants.set(pid, { start, cmd });
  }
}

/**
 * CPU time (user + system, seconds) of every process under `rootPid`, its reaped children's included, grouped by
 * what the process is (its command line with user names and numbers taken out).
 */
function cpuByKind(rootPid) {
  const tick = 100; // USER_HZ on Linux
  const kinds = new Map();
  for (const pid of processTree(new Set([rootPid])).keys()) {
    try {
      const f = statFields(pid);
      if (!f) continue;
      const seconds = (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / tick;
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const kind = cmd.replaceAll(TAG, '<tag>').replace(/\/[^ ]*\/(dspool_forkserver\.py|main\.js|dspool\.js|jupyter-notebook|ipykernel_launcher)/g, '$1').replace(/\S*(\/tmp|\/run)\S*/g, '<path>').replace(/\d+/g, 'N').slice(0, 70);
      kinds.set(kind, (kinds.get(kind) ?? 0) + seconds);
    } catch {
      // gone meanwhile
    }
  }
  return kinds;
}

/** The difference of two `cpuByKind` snapshots, largest first, as lines. */
function cpuDelta(before, after) {
  const rows = [...after].map(([k, v]) => [k, v - (before.get(k) ?? 0)]).filter(([, v]) => v >= 0.01).sort((a, b) => b[1] - a[1]);
  const total = rows.reduce((sum, [, v]) => sum + v, 0);
  return [`  CPU ${total.toFixed(2)} s in all:`, ...rows.map(([k, v]) => `    ${v.toFixed(2).padStart(6)} s  ${k}`)].join('\n');
}

/** True while the remembered process (same PID, same start time) still exists. */
const alive = (pid) => (descendants.has(pid) ? startTime(pid) === descendants.get(pid).start : startTime(pid) !== undefined);

/** A zombie: exited, waiting for its parent to reap it (nothing to kill). */
function zombie(pid) {
  return statFields(pid)?.[0] === 'Z';
}

/** Stops one top-level child gracefully (its own shutdown stops its servers), then SIGKILL after `graceMs`. */
async function stopChild(child, signal, graceMs) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  collectDescendants();
  const exited = once(child, 'exit');
  child.kill(signal);
  const timer = setTimeout(() => child.exitCode === null && child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/**
 * Last resort: SIGTERM, then SIGKILL, every remembered process that is still running. Zombies (exited, never
 * reaped by their parent) are only reported: there is nothing left to stop. Returns what had to be killed.
 */
async function reapLeftovers() {
  const remembered = [...descendants.keys()].filter(alive);
  for (const pid of remembered.filter(zombie)) log(`  zombie ${pid} (exited, not reaped by its parent): ${descendants.get(pid).cmd}`);
  const left = remembered.filter((pid) => !zombie(pid));
  for (const pid of left) {
    log(`  leftover ${pid}: ${descendants.get(pid).cmd}`);
    try {
      process.kill(pid, 'SIGTERM');
    } catch {}
  }
  const deadline = Date.now() + 5_000;
  while (Date.now() < deadline && left.some((pid) => alive(pid) && !zombie(pid))) await sleep(100);
  for (const pid of left.filter((pid) => alive(pid) && !zombie(pid))) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {}
  }
  return left;
}


function tempDir(prefix) {
  const dir = mkdtempSync(join(os.tmpdir(), `${prefix}-${TAG}-`));
  chmodSync(dir, 0o755);
  tempDirs.push(dir);
  return dir;
}

/**
 * Builds the dspool to measure into a private snapshot (bin/, dist/, package.json, a node_modules link) and points
 * BIN there, so someone rebuilding dist/ or editing src/ mid-run changes nothing:
 * - default: the working tree's src/ compiled (tsc, type errors tolerated as long as it emits);
 * - BENCH_REF=<commit>: that commit's src/ (git archive), compiled — for a working tree that is mid-edit;
 * - BENCH_NO_BUILD=1: a copy of dist/ as it is.
 */
function prepareCode() {
  const snap = tempDir('dspool-bench-code');
  const ref = process.env.BENCH_REF;
  if (ref) {
    const archive = spawnSync('git', ['archive', '--format=tar', ref, 'bin', 'src', 'scripts', 'package.json', 'tsconfig.json', 'tsconfig.build.json'], { cwd: ROOT, maxBuffer: 256 << 20 });
    if (archive.status !== 0) throw new Error(`git archive ${ref}: ${archive.stderr}`);
    execFileSync('tar', ['-x', '-C', snap], { input: archive.stdout });
  } else {
    cpSync(join(ROOT, 'bin'), join(snap, 'bin'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(snap, 'package.json'));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(snap, 'node_modules'));
  let how;
  if (ref || !process.env.BENCH_NO_BUILD) {
    log(`compiling ${ref ? `${ref}'s` : 'the working tree\'s'} src/ into a private dist/ …`);
    const out = join(snap, 'dist');
    const tsc = spawnSync(
      process.execPath,
      [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(ref ? snap : ROOT, 'tsconfig.build.json'), '--outDir', out, '--tsBuildInfoFile', join(out, '.tsbuildinfo')],
      { cwd: ref ? snap : ROOT, encoding: 'utf8', timeout: 300_000 },
    );
    // What tsc does not copy (the agent's fork server, Python), from the same source tree.
    spawnSync(process.execPath, [join(ref ? snap : ROOT, 'scripts/copy-assets.mjs'), out], { cwd: ref ? snap : ROOT, encoding: 'utf8' });
    if (existsSync(join(out, 'cli/main.js'))) how = tsc.status === 0 ? 'src/ compiled' : 'src/ compiled with type errors';
    else if (ref) throw new Error(`tsc emitted nothing for ${ref}: ${tsc.stdout.slice(0, 1000)}`);
    else log(`tsc emitted nothing (${tsc.stdout.slice(0, 500)}); using dist/ as found`);
  }
  if (!how) {
    if (!existsSync(join(ROOT, 'dist/cli/main.js'))) throw new Error('dist/ is missing: run npm run build');
    cpSync(join(ROOT, 'dist'), join(snap, 'dist'), { recursive: true });
    how = 'dist/ as found';
  }
  BIN = join(snap, 'bin', 'dspool.js');
  const rev = ref
    ? spawnSync('git', ['rev-parse', '--short', ref], { cwd: ROOT, encoding: 'utf8' }).stdout.trim()
    : spawnSync('git', ['describe', '--always', '--dirty'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim();
  CODE = `dspool ${rev || '?'} (${how})`;
  log(`measuring ${CODE}`);
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP and the kernel WebSocket (the same client code for both products)

async function expectStatus(promise, statuses, what) {
  const response = await promise;
  if (!statuses.includes(response.status)) throw new Error(`${what}: HTTP ${response.status} ${response.text.slice(0, 300)}`);
  return response;
}

/** A kernel WebSocket that runs cells one at a time. */
class KernelChannel {
  static async open(wsUrl, token) {
    const ws = new WebSocket(wsUrl, { headers: { authorization: `token ${token}` }, perMessageDeflate: false });
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`WebSocket ${wsUrl}: no answer`)), STEP_TIMEOUT_MS);
      ws.once('open', () => (clearTimeout(timer), resolve()));
      ws.once('error', (e) => (clearTimeout(timer), reject(e)));
      ws.once('unexpected-response', (_req, res) => (clearTimeout(timer), reject(new Error(`WebSocket ${wsUrl}: HTTP ${res.statusCode}`))));
    });
    return new KernelChannel(ws);
  }

  constructor(ws) {
    this.ws = ws;
    this.session = randomBytes(8).toString('hex');
    this.pending = undefined;
    ws.on('message', (data) => {
      const message = JSON.parse(String(data));
      const p = this.pending;
      if (!p || message.parent_header?.msg_id !== p.msgId) return;
      if (message.msg_type === 'execute_result') p.output += message.content.data?.['text/plain'] ?? '';
      if (message.msg_type === 'stream') p.output += message.content.text ?? '';
      if (message.msg_type === 'error') p.output += `${message.content.ename}: ${message.content.evalue}`;
      if (message.msg_type === 'status' && message.content.execution_state === 'idle') {
        this.pending = undefined;
        clearTimeout(p.timer);
        p.resolve(p.output);
      }
    });
    this.url = ws.url;
    this.opened = performance.now();
    this.received = 0;
    ws.on('message', () => this.received++);
    ws.on('close', (code, reason) => {
      const p = this.pending;
      if (!p) return;
      this.pending = undefined;
      clearTimeout(p.timer);
      p.reject(
        new Error(
          `kernel WebSocket ${this.url} closed by the other side (code ${code}${reason.length ? `, reason ${JSON.stringify(String(reason))}` : ''}) ` +
            `${(performance.now() - this.opened).toFixed(0)} ms after it opened, before the reply; ${this.received} message(s) received`,
        ),
      );
    });
  }

  /** Runs `code`, resolves with its text output once the kernel is idle again. */
  execute(code) {
    if (this.pending) throw new Error('one cell at a time');
    const msgId = randomBytes(8).toString('hex');
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => ((this.pending = undefined), reject(new Error('no kernel reply'))), STEP_TIMEOUT_MS);
      this.pending = { msgId, output: '', resolve, reject, timer };
      this.ws.send(
        JSON.stringify({
          header: { msg_id: msgId, username: 'bench', session: this.session, msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
          parent_header: {},
          metadata: {},
          content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
          buffers: [],
          channel: 'shell',
        }),
      );
    });
  }

  close() {
    this.ws.close();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The two products, behind one shape: { name, url, adminToken, tokens: Map<user, token>, stop() }

/** Both speak JupyterHub's REST API: start, wait until ready, stop, wait until gone. */
async function waitServer(product, user, wantReady) {
  const token = product.tokens.get(user);
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    const { json } = await expectStatus(api(product.url, `/hub/api/users/${user}`, { token }), [200], `${product.name} GET user ${user}`);
    const server = json?.servers?.[''];
    if (wantReady && server?.ready) return;
    if (!wantReady && (!server || (server.stopped && !server.pending))) return;
    if (wantReady && server && !server.pending && !server.ready) throw new Error(`${product.name}: ${user}'s server is neither pending nor ready`);
    if (Date.now() > deadline) throw new Error(`${product.name}: ${user}'s server not ${wantReady ? 'ready' : 'stopped'} in time`);
    await sleep(POLL_MS);
  }
}

async function stopServer(product, user) {
  const token = product.tokens.get(user);
  await expectStatus(api(product.url, `/hub/api/users/${user}/server`, { method: 'DELETE', token }), [202, 204, 400], `${product.name} stop ${user}`);
  await waitServer(product, user, false);
}

/** Cold start → first kernel result for one user; returns the phases in ms from the POST. */
async function coldStart(product, user, options) {
  try {
    return await coldStartOnce(product, user, options);
  } catch (error) {
    throw new Error(`${product.name}, ${user}: ${error.message}`, { cause: error });
  }
}

/** A new kernel in a running server (New → Python 3): ms until `1+1` answers. */
async function kernelToResult(product, user) {
  const token = product.tokens.get(user);
  const t0 = performance.now();
  const kernel = await expectStatus(
    api(product.url, `/user/${user}/api/kernels`, { method: 'POST', token, body: { name: 'python3' } }),
    [201],
    `${product.name} create kernel for ${user}`,
  );
  const channel = await KernelChannel.open(`${product.url.replace(/^http/, 'ws')}/user/${user}/api/kernels/${kernel.json.id}/channels`, token);
  const text = await channel.execute('1+1');
  const ms = performance.now() - t0;
  channel.close();
  if (text.trim() !== '2') throw new Error(`${product.name}: 1+1 gave ${JSON.stringify(text)}`);
  return ms;
}

async function coldStartOnce(product, user, { second = false, follow = false } = {}) {
  const token = product.tokens.get(user);
  const t0 = performance.now();
  const posted = api(product.url, `/hub/api/users/${user}/server`, { method: 'POST', token });
  const progress = follow ? followProgress(product.url, user, product.tokens.get(user), t0) : undefined;
  const started = await expectStatus(posted, [201, 202], `${product.name} start ${user}`);
  if (started.status === 202) await waitServer(product, user, true);
  const tReady = performance.now();
  const kernel = await expectStatus(
    api(product.url, `/user/${user}/api/kernels`, { method: 'POST', token, body: { name: 'python3' } }),
    [201],
    `${product.name} create kernel for ${user}`,
  );
  const tKernel = performance.now();
  const channel = await KernelChannel.open(`${product.url.replace(/^http/, 'ws')}/user/${user}/api/kernels/${kernel.json.id}/channels`, token);
  const text = await channel.execute('1+1');
  const tResult = performance.now();
  channel.close();
  if (text.trim() !== '2') throw new Error(`${product.name}: 1+1 gave ${JSON.stringify(text)}`);
  const instance = started.json?.instance ?? null; // dspool only: where the hub placed the server
  await progress?.stop();
  const secondKernel = second ? await kernelToResult(product, user) : undefined;
  return { total: tResult - t0, ready: tReady - t0, kernel: tKernel - tReady, result: tResult - tKernel, instance, secondKernel, progress: progress?.phases ?? {} };
}

/** `count` sequential executes of a tiny cell on an already running server's fresh kernel. */
async function executeRoundTrips(product, user, count) {
  const token = product.tokens.get(user);
  const kernel = await expectStatus(
    api(product.url, `/user/${user}/api/kernels`, { method: 'POST', token, body: { name: 'python3' } }),
    [201],
    `${product.name} create kernel for ${user}`,
  );
  const channel = await KernelChannel.open(`${product.url.replace(/^http/, 'ws')}/user/${user}/api/kernels/${kernel.json.id}/channels`, token);
  try {
    for (let i = 0; i < 5; i++) await channel.execute('1+1'); // warm-up
    const samples = [];
    for (let i = 0; i < count; i++) {
      const t = performance.now();
      const text = await channel.execute(`${i}+1`);
      samples.push(performance.now() - t);
      if (text.trim() !== String(i + 1)) throw new Error(`${product.name}: ${i}+1 gave ${JSON.stringify(text)}`);
    }
    return samples;
  } finally {
    channel.close();
    await api(product.url, `/user/${user}/api/kernels/${kernel.json.id}`, { method: 'DELETE', token }).catch(() => {});
  }
}

async function startDspool(users) {
  const dir = tempDir('dspool-bench');
  const config = join(dir, 'pool.yaml');
  const uidBase = 40000 + Math.floor(Math.random() * 2000) * 10;
  writeFileSync(
    config,
    [
      'dataDir: ./state',
      'share: { path: ./share }',
      'gateway: { host: 127.0.0.1, port: 0, sshPort: null }',
      'hub: { host: 127.0.0.1, port: 0 }',
      'provider: { type: local }',
      'pool: { instances: 2 }',
      // A team group of this run's own (/etc/group is the machine's; another pool's `dspool-team` has another GID).
      `users: { uidBase: ${uidBase}, teamGroup: ${TAG}team }`,
      'log: { level: warn }',
      '',
    ].join('\n'),
  );
  const child = track(spawn(process.execPath, [BIN, 'up', '--config', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, PATH } }));
  let output = '';
  child.stderr.on('data', (d) => (output = (output + d).slice(-20_000)));
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dspool not ready in 90 s:\n${output}`)), 90_000);
    child.stdout.on('data', (d) => {
      output += d;
      const match = /dspool is ready at (http:\/\/\S+?)\/?\s/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`dspool up exited with ${code}:\n${output}`))));
  });
  const cli = (args, stdin = '') => {
    const r = spawnSync(process.execPath, [BIN, ...args, '--config', config], { cwd: dir, input: stdin, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`dspool ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const tokens = new Map();
  for (const user of users) {
    unixUsers.add(user);
    cli(['users', 'add', user, '--password-stdin'], `${randomBytes(12).toString('hex')}\n`);
    tokens.set(user, cli(['token', user]));
  }
  return {
    name: 'dspool',
    pid: child.pid,
    url,
    tokens,
    // The hub writes its admin token here for the CLI (mode 0600): the bench reads instances with it.
    adminToken: readFileSync(join(dir, 'state', 'secrets', 'admin-token'), 'utf8').trim(),
    dir,
    output: () => output,
    stop: () => stopChild(child, 'SIGINT', 60_000),
  };
}

function ensureJupyterHub() {
  if (existsSync('/usr/bin/jupyterhub') && existsSync('/usr/bin/jupyterhub-singleuser')) return;
  log('installing Debian jupyterhub (apt-get) …');
  execFileSync('apt-get', ['update'], { stdio: 'ignore', timeout: 300_000 });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'jupyterhub'], {
    stdio: 'ignore',
    timeout: 600_000,
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  });
}

async function startJupyterHub(users) {
  ensureJupyterHub();
  const dir = tempDir('jupyterhub-bench');
  const [port, hubPort, proxyApiPort] = [await freePort(), await freePort(), await freePort()];
  const adminToken = randomBytes(24).toString('hex');
  mkdirSync(join(dir, 'home'), { mode: 0o755 });
  writeFileSync(join(dir, 'cookie_secret'), randomBytes(32).toString('hex'), { mode: 0o600 });
  const py = JSON.stringify;
  writeFileSync(
    join(dir, 'config.py'),
    [
      '# Throwaway JupyterHub config written by dspool bench/spawn.mjs',
      'c = get_config()  # noqa',
      `c.JupyterHub.ip = '127.0.0.1'`,
      `c.JupyterHub.port = ${port}`,
      `c.JupyterHub.hub_ip = '127.0.0.1'`,
      `c.JupyterHub.hub_port = ${hubPort}`,
      `c.ConfigurableHTTPProxy.api_url = 'http://127.0.0.1:${proxyApiPort}'`,
      `c.ConfigurableHTTPProxy.command = [${py(CHP)}]`,
      `c.ConfigurableHTTPProxy.pid_file = ${py(join(dir, 'proxy.pid'))}`,
      `c.ConfigurableHTTPProxy.debug = False`,
      `c.JupyterHub.db_url = ${py(`sqlite:///${join(dir, 'jupyterhub.sqlite')}`)}`,
      `c.JupyterHub.cookie_secret_file = ${py(join(dir, 'cookie_secret'))}`,
      `c.JupyterHub.pid_file = ${py(join(dir, 'jupyterhub.pid'))}`,
      `c.JupyterHub.authenticator_class = 'dummy'`,
      `c.JupyterHub.spawner_class = 'simple'`,
      `c.JupyterHub.log_level = 'WARN'`,
      `c.JupyterHub.cleanup_servers = True`,
      `c.JupyterHub.cleanup_proxy = True`,
      `c.JupyterHub.services = [{'name': 'bench', 'api_token': ${py(adminToken)}, 'admin': True}]`,
      `c.SimpleLocalProcessSpawner.home_dir_template = ${py(join(dir, 'home', '{username}'))}`,
      // Debian's singleuser extends notebook 6's NotebookApp (the `--NotebookApp.*` flags); root needs --allow-root.
      `c.Spawner.cmd = ['/usr/bin/jupyterhub-singleuser']`,
      `c.Spawner.args = ['--allow-root']`,
      `c.Spawner.default_url = '/tree'`,
      `c.Spawner.environment = {'PYDEVD_DISABLE_FILE_VALIDATION': '1', 'JUPYTERHUB_SINGLEUSER_APP': 'notebook.notebookapp.NotebookApp'}`,
      `c.Spawner.start_timeout = 90`,
      `c.Spawner.http_timeout = 90`,
      '',
    ].join('\n'),
  );
  const env = { PATH, HOME: dir, LANG: 'C.UTF-8' };
  const child = track(spawn('/usr/bin/jupyterhub', ['-f', join(dir, 'config.py')], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] }));
  let output = '';
  const keep = (d) => (output = (output + d).slice(-20_000));
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`jupyterhub exited with ${child.exitCode}:\n${output}`);
    try {
      const r = await api(url, '/hub/api/', { token: adminToken });
      if (r.status === 200) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`jupyterhub not ready in 90 s:\n${output}`);
    await sleep(200);
  }
  const tokens = new Map();
  for (const user of users) {
    await expectStatus(api(url, `/hub/api/users/${user}`, { method: 'POST', token: adminToken }), [201], `jupyterhub create ${user}`);
    const t = await expectStatus(
      api(url, `/hub/api/users/${user}/tokens`, { method: 'POST', token: adminToken, body: { note: 'bench' } }),
      [200, 201],
      `jupyterhub token for ${user}`,
    );
    tokens.set(user, t.json.token);
  }
  return {
    name: 'JupyterHub',
    url,
    tokens,
    dir,
    output: () => output,
    stop: () => stopChild(child, 'SIGTERM', 30_000),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Orchestration

/** dspool's fork servers (one per instance) once they run: their PIDs. Waits up to 90 s; [] when forking is off. */
async function waitForkServers(product, count) {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const found = [...processTree(new Set([...children].map((c) => c.pid))).keys()].filter((pid) => {
      try {
        const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
        return cmd.includes('import dspool_forkserver') && cmd.startsWith('/usr/bin/python3');
      } catch {
        return false;
      }
    });
    // Ready once it listens: its socket exists (it imports for a second or two first).
    const listening = found.filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/net/unix`, 'utf8').includes('forkserver.sock');
      } catch {
        return false;
      }
    });
    if (listening.length >= count || Date.now() > deadline) return listening;
    await sleep(200);
  }
}

/** VmRSS of a process in KiB, and its PSS (shared pages divided among their users) from smaps_rollup. */
function memoryOf(pid) {
  try {
    const rss = Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
    const pss = Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    return { rss, pss };
  } catch {
    return { rss: 0, pss: 0 };
  }
}

/** An idle instance's memory: its agent alone, and its fork server on top (medians over the instances). */
function instanceMemory(product, forkServers) {
  const agents = forkServers.map((pid) => Number(statFields(pid)?.[1]));
  const mib = (kib) => `${(kib / 1024).toFixed(0)} MiB`;
  const a = median(agents.map((pid) => memoryOf(pid).rss));
  const f = median(forkServers.map((pid) => memoryOf(pid).rss));
  const fp = median(forkServers.map((pid) => memoryOf(pid).pss));
  if (!forkServers.length) return { cell: 'no fork server', line: 'no fork server' };
  return {
    cell: `${mib(a)} / +${mib(f)} (${mib(fp)})`,
    line: `idle instance: agent RSS ${mib(a)}, fork server RSS ${mib(f)} (PSS ${mib(fp)})`,
  };
}

/** Waits until the pool has `count` ready instances again. */
async function waitPoolReady(product, count) {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const { json } = await api(product.url, '/hub/api/instances', { token: product.adminToken });
    if ((json ?? []).filter((i) => i.state === 'ready').length >= count) return;
    if (Date.now() > deadline) throw new Error('the pool did not get back to size');
    await sleep(200);
  }
}

/**
 * Starts `user`'s server, SIGKILLs the agent of the instance it runs on (a lost instance), then asks again as a
 * user would until a server elsewhere gives a first kernel result. Times from the kill.
 */
async function killToResult(product, user) {
  const first = await coldStart(product, user);
  const { json: instances } = await api(product.url, '/hub/api/instances', { token: product.adminToken });
  const victim = (instances ?? []).find((i) => i.id === first.instance);
  if (!victim?.provider?.pid) throw new Error(`no agent pid for ${first.instance}`);
  const token = product.tokens.get(user);
  const t0 = performance.now();
  process.kill(victim.provider.pid, 'SIGKILL');
  let attempts = 0;
  for (;;) {
    attempts++;
    const r = await api(product.url, `/hub/api/users/${user}/server`, { method: 'POST', token });
    if ((r.status === 201 || r.status === 202) && r.json?.instance && r.json.instance !== victim.id) {
      const placed = performance.now() - t0;
      if (r.status === 202) await waitServer(product, user, true);
      await kernelToResult(product, user);
      return { total: performance.now() - t0, placed, attempts, killed: victim.id, instance: r.json.instance };
    }
    if (performance.now() - t0 > 60_000) throw new Error(`no server elsewhere 60 s after the kill (last: HTTP ${r.status} ${r.text.slice(0, 200)})`);
    await sleep(100);
  }
}

/** ` placed: i-a×5 i-b×5` for dspool (from the start responses), '' for JupyterHub. */
function placement(results) {
  const counts = new Map();
  for (const r of results) if (r.instance) counts.set(r.instance, (counts.get(r.instance) ?? 0) + 1);
  return counts.size === 0 ? '' : ` placed: ${[...counts].map(([i, n]) => `${i}×${n}`).join(' ')}`;
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

function quantile(values, q) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('run as root: dspool creates Unix accounts for its users, JupyterHub spawns as the caller');
  prepareCode();
  const solo = `${TAG}solo`;
  const crowd = Array.from({ length: USERS }, (_, i) => `${TAG}u${i}`);
  const rtt = `${TAG}rtt`;
  const users = [solo, rtt, ...crowd];

  const products = [];
  const results = { dspool: { solo: [], phases: [], crowd: [], rtt: [] }, JupyterHub: { solo: [], phases: [], crowd: [], rtt: [] } };
  let failed = false;
  const onSignal = () => {
    log('interrupted; cleaning up');
    failed = true;
    void cleanup(products).finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    log(`starting dspool and JupyterHub (run ${TAG}) …`);
    products.push(await startDspool(users));
    if (!ONLY_DSPOOL) products.push(await startJupyterHub(users));
    collectDescendants();
    for (const p of products) log(`  ${p.name.padEnd(10)} ${p.url}`);
    const forkServers = await waitForkServers(products[0], 2);
    const memory = instanceMemory(products[0], forkServers);
    log(`  fork servers: ${forkServers.join(' ') || 'none'}; ${memory.line}`);

    // Warm-up (not counted): page cache for Python's imports, dspool's first useradd for the solo user.
    for (const p of products) {
      await coldStart(p, solo);
      await stopServer(p, solo);
    }

    // 1. one user, cold start → first kernel result
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? products : [...products].reverse();
      for (const p of order) {
        const r = await coldStart(p, solo, { second: true, follow: true });
        collectDescendants();
        await stopServer(p, solo);
        results[p.name].solo.push(r.total);
        results[p.name].phases.push(r);
        const steps = Object.entries(r.progress).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(', ');
        log(
          `round ${round + 1} ${p.name.padEnd(10)} 1 user: ${r.total.toFixed(0)} ms (ready ${r.ready.toFixed(0)}, kernel +${r.kernel.toFixed(0)}, 1+1 +${r.result.toFixed(0)}; ` +
            `progress: ${steps || '—'}; second kernel → result ${r.secondKernel.toFixed(0)})`,
        );
      }
    }

    // 2. USERS at once
    for (let round = 0; round < MULTI_ROUNDS; round++) {
      const order = round % 2 === 0 ? products : [...products].reverse();
      for (const p of order) {
        const cpuBefore = CPU && p.pid ? cpuByKind(p.pid) : undefined;
        const t0 = performance.now();
        const each = await Promise.all(crowd.map((u) => coldStart(p, u)));
        const total = performance.now() - t0;
        collectDescendants();
        if (cpuBefore) log(cpuDelta(cpuBefore, cpuByKind(p.pid)));
        await Promise.all(crowd.map((u) => stopServer(p, u)));
        results[p.name].crowd.push(total);
        const m = (key) => median(each.map((r) => r[key])).toFixed(0);
        log(
          `round ${round + 1} ${p.name.padEnd(10)} ${USERS} users: all in ${total.toFixed(0)} ms (first ${Math.min(...each.map((r) => r.total)).toFixed(0)}; ` +
            `medians: ready ${m('ready')}, kernel +${m('kernel')}, 1+1 +${m('result')}; ready range ${Math.min(...each.map((r) => r.ready)).toFixed(0)}–${Math.max(...each.map((r) => r.ready)).toFixed(0)})` +
            placement(each),
        );
      }
    }

    // 3. execute round trips: one running server per product, a fresh kernel per round
    for (const p of products) await coldStart(p, rtt);
    collectDescendants();
    const rttRounds = Math.max(3, ROUNDS);
    for (let round = 0; round < rttRounds; round++) {
      const order = round % 2 === 0 ? products : [...products].reverse();
      for (const p of order) {
        const samples = await executeRoundTrips(p, rtt, EXECUTES);
        results[p.name].rtt.push(...samples);
        log(`round ${round + 1} ${p.name.padEnd(10)} execute: p50 ${quantile(samples, 0.5).toFixed(2)} ms, p99 ${quantile(samples, 0.99).toFixed(2)} ms`);
      }
    }
    for (const p of products) await stopServer(p, rtt);

    // 4. dspool only: kill -9 the instance a user's server runs on → first result on another instance
    const killRounds = Number(process.env.BENCH_KILL_ROUNDS ?? 2);
    const kills = [];
    for (let round = 0; round < killRounds; round++) {
      const k = await killToResult(products[0], solo);
      kills.push(k);
      log(`kill ${round + 1}: SIGKILL of ${k.killed}'s agent → result on ${k.instance}: ${k.total.toFixed(0)} ms (server elsewhere after ${k.placed.toFixed(0)} ms, ${k.attempts} request(s))`);
      await stopServer(products[0], solo);
      await waitPoolReady(products[0], 2);
      await waitForkServers(products[0], 2);
    }

    // Table
    const d = results.dspool;
    const j = results.JupyterHub;
    const fmt = (ms) => (typeof ms !== 'number' || Number.isNaN(ms) ? '—' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`);
    const row = (label, a, b) => `| ${label} | ${fmt(a)} | ${fmt(b)} | ${(a / b).toFixed(2)}× |`;
    const phase = (r, key) => median(r.phases.map((x) => x[key]));
    /** Median time of a progress step since the POST (only the rounds where the stream saw it); NaN: never seen. */
    const step = (r, key) => {
      const seen = r.phases.map((x) => x.progress[key]).filter((v) => v !== undefined);
      return seen.length ? median(seen) : NaN;
    };
    const cell = (ms) => (Number.isFinite(ms) ? fmt(ms) : '—');
    const stepRow = (label, a, b) => `| ${label} | ${cell(a)} | ${cell(b)} | ${Number.isFinite(a) && Number.isFinite(b) ? `${(a / b).toFixed(2)}×` : ''} |`;
    const forked = (r) => (Number.isFinite(step(r, 'forked')) ? step(r, 'forked') : step(r, 'exec'));
    const lines = [
      '| metric | dspool | JupyterHub 3.0 | dspool / JupyterHub |',
      '|---|---:|---:|---:|',
      row(`1 user: start → first kernel result (median of ${ROUNDS})`, median(d.solo), median(j.solo)),
      row('  … of which POST → server ready', phase(d, 'ready'), phase(j, 'ready')),
      stepRow('    · placed on an instance (JupyterHub: "Spawning server")', step(d, 'placed'), step(j, 'placed')),
      stepRow('    · server process forked (exec\'d where it says so)', forked(d), NaN),
      stepRow('    · server ready (hub\'s progress event)', step(d, 'ready'), step(j, 'ready')),
      row('  … of which create kernel (POST api/kernels)', phase(d, 'kernel'), phase(j, 'kernel')),
      row('  … of which WebSocket + `1+1` result', phase(d, 'result'), phase(j, 'result')),
      row('second kernel in an open server (New → Python 3) → `1+1` result', median(d.phases.map((x) => x.secondKernel)), median(j.phases.map((x) => x.secondKernel))),
      row(`${USERS} users at once: all have a result (median of ${MULTI_ROUNDS})`, median(d.crowd), median(j.crowd)),
      row(`kernel execute round trip p50 (${rttRounds}×${EXECUTES} executes)`, quantile(d.rtt, 0.5), quantile(j.rtt, 0.5)),
      row('kernel execute round trip p99', quantile(d.rtt, 0.99), quantile(j.rtt, 0.99)),
    ];
    if (kills.length) lines.push(`| kill -9 of the user's instance → first result on another (dspool; ${kills.map((k) => fmt(k.total)).join(', ')}) | ${fmt(median(kills.map((k) => k.total)))} | — | |`);
    lines.push(`| idle instance memory: agent RSS / + fork server RSS (PSS) | ${memory.cell} | — | |`);
    const notes = [
      '',
      'Lower is better; a ratio below 1× means dspool is faster. Every start is cold (the server is stopped between rounds);',
      'rounds interleave the two products and alternate which goes first.',
      `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, Node ${process.version}, ${new Date().toISOString()}. ` +
        'Both: Debian notebook 6 + /usr/bin/python3 ipykernel, loopback, API token in the Authorization header. ' +
        `${CODE}: \`dspool up\`, 2 local instances, through its gateway. JupyterHub 3.0 (Debian): DummyAuthenticator, ` +
        'SimpleLocalProcessSpawner running `jupyterhub-singleuser --allow-root`, through configurable-http-proxy ' +
        `(npm ${readChpVersion()}).`,
    ];
    const table = [...lines, ...notes].join('\n');
    console.log(`\n${table}\n`);
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    writeFileSync(join(ROOT, 'bench/results/spawn.md'), `# Spawn benchmark: dspool vs JupyterHub\n\n${table}\n`);
  } catch (error) {
    failed = true;
    log(error);
    for (const p of products) log(`--- ${p.name} output (tail) ---\n${p.output().slice(-4000)}`);
    keepEvidence(products);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const ok = await cleanup(products);
    if (!ok) failed = true;
  }
  process.exitCode = failed ? 1 : 0;
}

/** After a failure, before cleanup deletes them: copies both products' logs to bench/results/spawn-failure-<run>/. */
function keepEvidence(products) {
  const dest = join(ROOT, 'bench/results', `spawn-failure-${TAG}`);
  try {
    mkdirSync(dest, { recursive: true });
    for (const p of products) {
      writeFileSync(join(dest, `${p.name}-output.log`), p.output());
      // dspool's local instances keep agent.log and each server's Jupyter log under <dataDir>/instances/<id>/.
      const walk = (dir, depth) => {
        for (const entry of readdirSync(dir, { withFileTypes: true })) {
          const full = join(dir, entry.name);
          if (entry.isDirectory() && depth < 4 && entry.name !== 'share' && !entry.name.startsWith('.')) walk(full, depth + 1);
          else if (entry.isFile() && entry.name.endsWith('.log')) cpSync(full, join(dest, `${p.name}-${full.slice(p.dir.length + 1).replaceAll('/', '_')}`));
        }
      };
      walk(p.dir, 0);
    }
    log(`logs kept in ${dest}`);
  } catch (error) {
    log(`could not keep the logs: ${error.message}`);
  }
}

function readChpVersion() {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules/configurable-http-proxy/package.json'), 'utf8')).version;
  } catch {
    return '?';
  }
}

let cleaned;
/** Stops both products, kills whatever they left by PID, deletes accounts and temp dirs. Returns true when clean. */
function cleanup(products) {
  cleaned ??= (async () => {
    await Promise.allSettled(products.map((p) => p.stop()));
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    const leftovers = await reapLeftovers();
    if (leftovers.length > 0) log(`had to kill ${leftovers.length} leftover process(es): ${leftovers.join(' ')}`);
    for (const user of unixUsers) {
      spawnSync('userdel', [user], { stdio: 'ignore' });
      spawnSync('groupdel', [user], { stdio: 'ignore' });
    }
    spawnSync('groupdel', [`${TAG}team`], { stdio: 'ignore' });
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    // Nothing of this run may be left: no process naming its temp dirs or users, no account.
    const still = spawnSync('pgrep', ['-af', TAG], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l && !l.includes(String(process.pid)));
    const accounts = [...unixUsers].filter((u) => spawnSync('id', [u], { stdio: 'ignore' }).status === 0);
    if (still.length > 0) log(`processes still running:\n${still.join('\n')}`);
    if (accounts.length > 0) log(`accounts still present: ${accounts.join(' ')}`);
    return still.length === 0 && accounts.length === 0 && [...descendants.keys()].every((pid) => !alive(pid) || zombie(pid));
  })();
  return cleaned;
}

await main();
