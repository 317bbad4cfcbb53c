#!/usr/bin/env node
// Benchmark: the same backend reached directly, through configurable-http-proxy, and through the dspool gateway.
// Measures HTTP keep-alive req/s and p99 latency (1 and 10 connections) and WebSocket echo round trips, over
// several interleaved rounds, and prints a Markdown table (also written to bench/results/gateway.md).
//
//   npm run bench:gateway                  # 5 rounds × 3 s per measurement
//   BENCH_ROUNDS=3 BENCH_SECONDS=2 BENCH_WS_MESSAGES=2000 npm run bench:gateway
//   npm run bench:gateway:jupyter          # the backend is a real Jupyter Notebook 6 server (GET api/status; no WS)
//
// Every server and load generator runs as its own process on loopback, so the load generator never shares the
// proxy's event loop; each is stopped by its PID at the end.
import { spawn, execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const WS_MESSAGES = Number(process.env.BENCH_WS_MESSAGES ?? 3000);
const TOKEN = 'bench-api-token';
/** `jupyter`: the backend is Debian's Jupyter Notebook server instead of a minimal Node server. */
const JUPYTER_BACKEND = process.env.BENCH_BACKEND === 'jupyter';
const PATH = JUPYTER_BACKEND ? '/user/bench/api/status' : '/user/bench/api/ping';
/** Child processes started by this run, stopped by PID at the end. */
const children = new Set();

// ---------------------------------------------------------------------------------------------------------------
// Roles run as child processes: `node bench/gateway.mjs <role> …`; each prints one JSON line when ready / done.

async function runBackend() {
  if (JUPYTER_BACKEND) return runJupyterBackend();
  const { WebSocketServer } = await import('ws');
  const body = Buffer.from('{"ok":true}');
  const server = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
    res.end(body);
  });
  const wss = new WebSocketServer({ server, perMessageDeflate: false });
  wss.on('connection', (ws) => ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary })));
  server.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: server.address().port })));
}

/**
 * A real Jupyter Notebook 6 server on loopback under /user/bench/, taking the bench's API token (through its
 * environment), so that the direct path, configurable-http-proxy and the gateway all present the same credential.
 */
async function runJupyterBackend() {
  const { mkdtempSync, rmSync } = await import('node:fs');
  const port = await freePort();
  const dir = mkdtempSync(join(os.tmpdir(), 'dspool-bench-jupyter-'));
  const args = ['--no-browser', '--ip=127.0.0.1', `--port=${port}`, '--NotebookApp.base_url=/user/bench/', `--notebook-dir=${dir}`, '--log-level=WARN'];
  if (process.getuid?.() === 0) args.push('--allow-root');
  const jupyter = spawn('/usr/bin/jupyter-notebook', args, {
    env: { ...process.env, JUPYTER_TOKEN: TOKEN, JUPYTER_CONFIG_DIR: join(dir, '.jupyter'), JUPYTER_RUNTIME_DIR: join(dir, '.runtime') },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const stop = () => {
    if (jupyter.exitCode === null) jupyter.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('SIGTERM', () => (stop(), process.exit(0)));
  process.once('exit', stop);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const status = await new Promise((resolve) => {
      http.get({ host: '127.0.0.1', port, path: PATH, headers: { authorization: `token ${TOKEN}` } }, (res) => (res.resume(), resolve(res.statusCode)))
        .on('error', () => resolve(0));
    });
    if (status === 200) break;
    if (Date.now() > deadline || jupyter.exitCode !== null) throw new Error('jupyter-notebook did not start');
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  console.log(JSON.stringify({ port }));
}

async function runGateway(backendPort) {
  const { pino } = await import('pino');
  const { createGateway } = await import(pathToFileURL(join(ROOT, 'dist/gateway/index.js')).href);
  const { startFakeHub } = await import(pathToFileURL(join(ROOT, 'dist/gateway/testing.js')).href);
  const hub = await startFakeHub({
    routes: [{ user: 'bench', sessionId: 's1', instanceId: 'i1', target: `http://127.0.0.1:${backendPort}`, token: JUPYTER_BACKEND ? TOKEN : 'jupyter-token' }],
    identities: { [`token:${TOKEN}`]: { user: 'bench', admin: false } },
  });
  const gateway = createGateway({ port: 0, hubUrl: hub.url, secret: hub.secret, log: pino({ level: 'warn' }) });
  const { port } = await gateway.listen();
  await hub.linked();
  while (gateway.hubLink.routeCount === 0) await new Promise((resolve) => setTimeout(resolve, 10));
  console.log(JSON.stringify({ port }));
  process.once('SIGTERM', () => {
    void Promise.allSettled([gateway.close(), hub.close()]).then(() => process.exit(0));
  });
}

/** wrk (C, one thread) costs the 2-core machine far less CPU than autocannon; used when installed. */
const WRK = ['/usr/bin/wrk', '/usr/local/bin/wrk'].find((file) => existsSync(file));

function parseWrkDuration(text) {
  const match = /([\d.]+)(us|ms|s)/.exec(text);
  if (!match) return Number.NaN;
  const value = Number(match[1]);
  return match[2] === 'us' ? value / 1000 : match[2] === 's' ? value * 1000 : value;
}

async function runHttpLoad(url, connections, seconds) {
  if (WRK && process.env.BENCH_LOAD !== 'autocannon') {
    const out = execFileSync(WRK, ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency', '-H', `Authorization: token ${TOKEN}`, url], { encoding: 'utf8' });
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
    const p99Ms = parseWrkDuration(/\s99%\s+(\S+)/.exec(out)?.[1] ?? '');
    const p50Ms = parseWrkDuration(/\s50%\s+(\S+)/.exec(out)?.[1] ?? '');
    const errors = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(out)?.[1] ?? 0) + Number(/Socket errors:.*?(\d+)/.exec(out)?.[1] ?? 0);
    console.log(JSON.stringify({ rps, p99Ms, p50Ms, errors }));
    return;
  }
  const { default: autocannon } = await import('autocannon');
  const result = await autocannon({
    url,
    connections,
    duration: seconds,
    pipelining: 1,
    headers: { authorization: `token ${TOKEN}` },
  });
  const errors = result.errors + result.timeouts + result.non2xx;
  console.log(JSON.stringify({ rps: result.requests.average, p99Ms: result.latency.p99, p50Ms: result.latency.p50, errors }));
}

async function runWsLoad(url, messages) {
  const { default: WebSocket } = await import('ws');
  const ws = new WebSocket(url, { headers: { authorization: `token ${TOKEN}` }, perMessageDeflate: false });
  await once(ws, 'open');
  ws.binaryType = 'nodebuffer';
  const payload = JSON.stringify({ header: { msg_type: 'execute_request', msg_id: 'x'.repeat(32) }, content: { code: '1+1' } });
  const samples = new Float64Array(messages);
  const warmup = Math.min(500, Math.floor(messages / 5));
  let i = -warmup;
  let started = 0n;
  await new Promise((resolve, reject) => {
    ws.on('error', reject);
    ws.on('message', () => {
      if (i >= 0) samples[i] = Number(process.hrtime.bigint() - started) / 1000;
      i++;
      if (i >= messages) return resolve();
      started = process.hrtime.bigint();
      ws.send(payload);
    });
    started = process.hrtime.bigint();
    ws.send(payload);
  });
  ws.close();
  samples.sort();
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))];
  console.log(JSON.stringify({ p50Us: at(0.5), p99Us: at(0.99) }));
}

/** Opens `sockets` WebSockets at once, echoes one message on each, closes them; `cycles` times. */
async function runWsSoak(url, sockets, cycles) {
  const { default: WebSocket } = await import('ws');
  let ok = 0;
  let failed = 0;
  for (let cycle = 0; cycle < cycles; cycle++) {
    const results = await Promise.allSettled(
      Array.from({ length: sockets }, () => new Promise((resolve, reject) => {
        const ws = new WebSocket(url, { headers: { authorization: `token ${TOKEN}` }, perMessageDeflate: false });
        const timer = setTimeout(() => { ws.terminate(); reject(new Error('timeout')); }, 20_000);
        ws.once('open', () => ws.send('ping'));
        ws.once('message', () => { clearTimeout(timer); ws.close(); resolve(); });
        ws.once('error', (error) => { clearTimeout(timer); reject(error); });
      })),
    );
    for (const r of results) r.status === 'fulfilled' ? ok++ : failed++;
  }
  console.log(JSON.stringify({ ok, failed }));
}

/**
 * Holds `sockets` WebSockets open for `seconds`, each sending one message a second (spread over the second) and
 * timing its echo; prints round-trip p50/p99, messages and failures (a socket that closed or an echo that never came).
 */
async function runWsHold(url, sockets, seconds) {
  const { default: WebSocket } = await import('ws');
  const samples = [];
  let failed = 0;
  const open = await Promise.all(
    Array.from({ length: sockets }, () => new Promise((resolve) => {
      const ws = new WebSocket(url, { headers: { authorization: `token ${TOKEN}` }, perMessageDeflate: false });
      const timer = setTimeout(() => (ws.terminate(), resolve(undefined)), 30_000);
      ws.once('open', () => (clearTimeout(timer), resolve(ws)));
      ws.once('error', () => (clearTimeout(timer), resolve(undefined)));
    })),
  );
  const live = open.filter(Boolean);
  failed += sockets - live.length;
  console.log(JSON.stringify({ opened: live.length }));
  const end = Date.now() + seconds * 1000;
  await Promise.all(live.map((ws, i) => new Promise((resolve) => {
    let sentAt = 0n;
    let waiting = false;
    let timer;
    const finish = (ok) => {
      clearTimeout(timer);
      if (!ok) failed++;
      ws.removeAllListeners('close');
      ws.close();
      resolve();
    };
    ws.on('close', () => finish(false));
    ws.on('message', () => {
      samples.push(Number(process.hrtime.bigint() - sentAt) / 1000);
      waiting = false;
    });
    const tick = () => {
      if (waiting) return finish(false);
      if (Date.now() >= end) return finish(true);
      waiting = true;
      sentAt = process.hrtime.bigint();
      ws.send('ping');
      timer = setTimeout(tick, 1000);
    };
    timer = setTimeout(tick, Math.floor((i / live.length) * 1000));
  })));
  samples.sort((a, b) => a - b);
  const at = (q) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? Number.NaN;
  process.stdout.write(`${JSON.stringify({ messages: samples.length, failed, p50Us: at(0.5), p99Us: at(0.99) })}\n`);
}

/** Resident memory of a process, in MiB (Linux). */
function rssMiB(pid) {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

/** `npm run bench:soak`: memory of the gateway and of configurable-http-proxy under many short-lived WebSockets. */
async function soak() {
  const SOCKETS = Number(process.env.BENCH_SOAK_SOCKETS ?? 500);
  const CYCLES = Number(process.env.BENCH_SOAK_CYCLES ?? 4);
  const ROUNDS_SOAK = Number(process.env.BENCH_SOAK_ROUNDS ?? 10);
  const { info: backend } = await startChild(process.execPath, [SELF, 'backend']);
  const chp = await startChp(backend.port);
  const { child: gatewayChild, info: gateway } = await startChild(process.execPath, [SELF, 'gateway', String(backend.port)]);
  const targets = [
    { name: 'CHP', port: chp.port, pid: chp.pid },
    { name: 'gateway', port: gateway.port, pid: gatewayChild.pid },
  ];
  const rss = Object.fromEntries(targets.map((t) => [t.name, []]));
  const failures = Object.fromEntries(targets.map((t) => [t.name, 0]));
  for (const t of targets) await runChild(['ws-soak', `ws://127.0.0.1:${t.port}/user/bench/api/kernels/k/channels`, String(SOCKETS), '1']);
  for (const t of targets) rss[t.name].push(rssMiB(t.pid));
  for (let round = 0; round < ROUNDS_SOAK; round++) {
    for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
      const result = await runChild(['ws-soak', `ws://127.0.0.1:${t.port}/user/bench/api/kernels/k/channels`, String(SOCKETS), String(CYCLES)]);
      failures[t.name] += result.failed;
      await new Promise((resolve) => setTimeout(resolve, 500));
      rss[t.name].push(rssMiB(t.pid));
    }
    console.error(`soak round ${round + 1}/${ROUNDS_SOAK}: ${targets.map((t) => `${t.name} ${rss[t.name].at(-1).toFixed(1)} MiB`).join(', ')}`);
  }
  const total = SOCKETS * CYCLES * ROUNDS_SOAK;
  // RSS breathes with the garbage collector, so compare halves: a leak shows as a second half well above the first.
  const lines = [
    `| proxy | RSS after warm-up MiB | median, first half of the rounds | median, second half | max MiB | failed |`,
    '|---|---:|---:|---:|---:|---:|',
    ...targets.map((t) => {
      const series = rss[t.name].slice(1);
      const half = Math.floor(series.length / 2);
      return `| ${t.name} | ${rss[t.name][0].toFixed(1)} | ${median(series.slice(0, half)).toFixed(1)} | ${median(series.slice(half)).toFixed(1)} | ${Math.max(...series).toFixed(1)} | ${failures[t.name]} |`;
    }),
    '',
    `${total} WebSockets per proxy (${ROUNDS_SOAK} rounds × ${CYCLES} cycles × ${SOCKETS} at once, each echoing one message), rounds interleaved; RSS read from /proc after each round.`,
  ];
  const table = lines.join('\n');
  console.log(`\n${table}\n`);
  const held = await hold(targets);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/soak.md'), `# Gateway WebSocket soak\n\n${table}\n\n${held}\n`);
}

/**
 * Long-lived WebSockets, as open notebooks are: both proxies hold `BENCH_HOLD_SOCKETS` sockets at once for
 * `BENCH_HOLD_SECONDS`, each echoing one message a second; RSS is read every 10 s.
 */
async function hold(targets) {
  const SOCKETS = Number(process.env.BENCH_HOLD_SOCKETS ?? 1000);
  const SECONDS = Number(process.env.BENCH_HOLD_SECONDS ?? 180);
  const before = Object.fromEntries(targets.map((t) => [t.name, rssMiB(t.pid)]));
  const series = Object.fromEntries(targets.map((t) => [t.name, []]));
  const sampler = setInterval(() => {
    for (const t of targets) series[t.name].push(rssMiB(t.pid));
  }, 10_000);
  console.error(`hold: ${SOCKETS} WebSockets per proxy for ${SECONDS} s, one message a second each`);
  const results = await Promise.all(targets.map(async (t) => {
    const child = spawn(process.execPath, [SELF, 'ws-hold', `ws://127.0.0.1:${t.port}/user/bench/api/kernels/k/channels`, String(SOCKETS), String(SECONDS)], {
      cwd: ROOT, stdio: ['ignore', 'pipe', 'inherit'],
    });
    children.add(child);
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    await once(child, 'exit');
    children.delete(child);
    return JSON.parse(out.trim().split('\n').at(-1));
  }));
  clearInterval(sampler);
  await new Promise((resolve) => setTimeout(resolve, 2_000));
  const lines = [
    '| proxy | RSS before MiB | RSS while held, first sample | last sample | max | RSS after close | echo p50 µs | echo p99 µs | messages | failed |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...targets.map((t, i) => {
      const s = series[t.name];
      const r = results[i];
      return `| ${t.name} | ${before[t.name].toFixed(1)} | ${(s[0] ?? NaN).toFixed(1)} | ${(s.at(-1) ?? NaN).toFixed(1)} | ${Math.max(...s).toFixed(1)} | ${rssMiB(t.pid).toFixed(1)} | ${Math.round(r.p50Us)} | ${Math.round(r.p99Us)} | ${r.messages} | ${r.failed} |`;
    }),
    '',
    `${SOCKETS} WebSockets per proxy held for ${SECONDS} s, both proxies at once, each socket echoing one message a second; RSS every 10 s.`,
  ];
  const table = lines.join('\n');
  console.log(`\n${table}\n`);
  return table;
}

// ---------------------------------------------------------------------------------------------------------------
// Orchestration

/** Starts a child process and resolves with its first JSON line. */
async function startChild(command, args, env = {}) {
  const child = spawn(command, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let buffer = '';
  for await (const chunk of child.stdout) {
    buffer += chunk;
    const newline = buffer.indexOf('\n');
    if (newline !== -1) return { child, info: JSON.parse(buffer.slice(0, newline)) };
  }
  throw new Error(`${args.join(' ')} exited before it was ready`);
}

/** Runs a child to completion and returns its JSON line. */
async function runChild(args) {
  const { child, info } = await startChild(process.execPath, [SELF, ...args]);
  if (child.exitCode === null) await once(child, 'exit');
  return info;
}

async function stopAll() {
  await Promise.all(
    [...children].map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = once(child, 'exit');
      process.kill(child.pid, 'SIGTERM');
      const timer = setTimeout(() => child.exitCode === null && process.kill(child.pid, 'SIGKILL'), 3_000);
      await exited;
      clearTimeout(timer);
    }),
  );
}


async function startChp(backendPort) {
  const [port, apiPort] = [await freePort(), await freePort()];
  const token = 'bench-chp-token';
  const bin = join(ROOT, 'node_modules/.bin/configurable-http-proxy');
  const child = spawn(bin, ['--ip', '127.0.0.1', '--port', String(port), '--api-ip', '127.0.0.1', '--api-port', String(apiPort), '--log-level', 'warn'], {
    cwd: ROOT,
    env: { ...process.env, CONFIGPROXY_AUTH_TOKEN: token },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  const deadline = Date.now() + 15_000;
  for (;;) {
    try {
      const status = await new Promise((resolve, reject) => {
        const req = http.request(
          { host: '127.0.0.1', port: apiPort, method: 'POST', path: '/api/routes/user/bench', headers: { authorization: `token ${token}` } },
          (res) => {
            res.resume();
            resolve(res.statusCode);
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ target: `http://127.0.0.1:${backendPort}` }));
      });
      if (status === 201) return { port, pid: child.pid };
      throw new Error(`CHP answered ${status} when adding the route`);
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

async function main() {
  process.once('SIGINT', () => void stopAll().then(() => process.exit(130)));
  process.once('exit', () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  });
  console.error('building dist/ …');
  try {
    execFileSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { cwd: ROOT, stdio: 'ignore' });
  } catch {
    if (!existsSync(join(ROOT, 'dist/gateway/index.js'))) throw new Error('npm run build failed and dist/gateway/index.js is missing');
    console.error('tsc reported errors (outside the gateway?); using the emitted dist/ anyway');
  }
  try {
    const { info: backend } = await startChild(process.execPath, [SELF, 'backend']);
    const { port: chpPort } = await startChp(backend.port);
    // BENCH_PROFILE=1 writes a CPU profile of the gateway process to bench/results/ (open it in Chrome DevTools).
    const profile = process.env.BENCH_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', join(ROOT, 'bench/results')] : [];
    const { info: gateway } = await startChild(process.execPath, [...profile, SELF, 'gateway', String(backend.port)]);
    const targets = [
      { name: 'direct', port: backend.port },
      { name: 'CHP', port: chpPort },
      { name: 'gateway', port: gateway.port },
    ];
    console.error(`backend :${backend.port}, CHP :${chpPort}, gateway :${gateway.port}; ${ROUNDS} rounds × ${SECONDS} s, ${WS_MESSAGES} WS messages`);
    const samples = Object.fromEntries(targets.map((t) => [t.name, { rps1: [], p99c1: [], rps10: [], p99c10: [], wsP50: [], wsP99: [], errors: 0 }]));
    // Warm up every path (JIT, keep-alive pools).
    for (const t of targets) await runChild(['http-load', `http://127.0.0.1:${t.port}${PATH}`, '10', '1']);
    for (let round = 0; round < ROUNDS; round++) {
      const order = targets.map((_, i) => targets[(i + round) % targets.length]);
      for (const t of order) {
        const url = `http://127.0.0.1:${t.port}${PATH}`;
        const s = samples[t.name];
        const one = await runChild(['http-load', url, '1', String(SECONDS)]);
        const ten = await runChild(['http-load', url, '10', String(SECONDS)]);
        const ws = JUPYTER_BACKEND ? { p50Us: Number.NaN, p99Us: Number.NaN }
          : await runChild(['ws-load', `ws://127.0.0.1:${t.port}/user/bench/api/kernels/k/channels`, String(WS_MESSAGES)]);
        s.rps1.push(one.rps);
        s.p99c1.push(one.p99Ms);
        s.rps10.push(ten.rps);
        s.p99c10.push(ten.p99Ms);
        s.wsP50.push(ws.p50Us);
        s.wsP99.push(ws.p99Us);
        s.errors += one.errors + ten.errors;
        console.error(
          `round ${round + 1} ${t.name.padEnd(7)} c1 ${Math.round(one.rps)} req/s p99 ${one.p99Ms} ms | c10 ${Math.round(ten.rps)} req/s p99 ${ten.p99Ms} ms` +
            (JUPYTER_BACKEND ? '' : ` | ws p50 ${Math.round(ws.p50Us)} µs p99 ${Math.round(ws.p99Us)} µs`),
        );
      }
    }
    const m = Object.fromEntries(targets.map((t) => [t.name, Object.fromEntries(Object.entries(samples[t.name]).map(([k, v]) => [k, Array.isArray(v) ? median(v) : v]))]));
    const rows = [
      ['HTTP req/s, 1 connection', 'rps1', true, 0],
      ['HTTP p99 ms, 1 connection', 'p99c1', false, 3],
      ['HTTP req/s, 10 connections', 'rps10', true, 0],
      ['HTTP p99 ms, 10 connections', 'p99c10', false, 3],
      ...(JUPYTER_BACKEND ? [] : [['WS echo p50 µs', 'wsP50', false, 0], ['WS echo p99 µs', 'wsP99', false, 0]]),
    ];
    const fmt = (value, digits) => value.toFixed(digits);
    // Ratios are "times better than": throughput gateway/x, latency x/gateway, so > 1 always means the gateway wins.
    const ratio = (gw, other, higherIsBetter) => `${(higherIsBetter ? gw / other : other / gw).toFixed(2)}×`;
    const lines = [
      `| metric (median of ${ROUNDS} rounds) | direct | CHP | gateway | CHP vs direct | gateway vs direct | gateway vs CHP |`,
      '|---|---:|---:|---:|---:|---:|---:|',
      ...rows.map(([label, key, higher, digits]) => {
        const d = m.direct[key];
        const c = m.CHP[key];
        const g = m.gateway[key];
        return `| ${label} | ${fmt(d, digits)} | ${fmt(c, digits)} | ${fmt(g, digits)} | ${ratio(c, d, higher)} | ${ratio(g, d, higher)} | ${ratio(g, c, higher)} |`;
      }),
    ];
    const notes = [
      '',
      `Ratios read "times as good": for req/s it is a/b, for latency b/a, so above 1× means the first one wins.`,
      `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'CPU'}, Node ${process.version}, ${new Date().toISOString()}; ` +
        `${ROUNDS} interleaved rounds × ${SECONDS} s per HTTP measurement${JUPYTER_BACKEND ? "" : `, ${WS_MESSAGES} WS round trips one at a time`}; ` +
        `${WRK && process.env.BENCH_LOAD !== 'autocannon' ? 'wrk -t1' : 'autocannon'} in its own process; HTTP errors/non-2xx: ` +
        targets.map((t) => `${t.name} ${m[t.name].errors}`).join(', ') + '.',
    ];
    const table = [...lines, ...notes].join('\n');
    console.log(`\n${table}\n`);
    mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
    const backendNote = JUPYTER_BACKEND ? 'Backend: Jupyter Notebook 6 (Debian), GET api/status.' : 'Backend: a minimal Node server.';
    writeFileSync(join(ROOT, `bench/results/gateway${JUPYTER_BACKEND ? '-jupyter' : ''}.md`), `# Gateway benchmark\n\n${backendNote}\n\n${table}\n`);
  } finally {
    await stopAll();
  }
}

// ---------------------------------------------------------------------------------------------------------------

const role = process.argv[2];
if (role === 'backend') await runBackend();
else if (role === 'gateway') await runGateway(Number(process.argv[3]));
else if (role === 'http-load') await runHttpLoad(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
else if (role === 'ws-load') await runWsLoad(process.argv[3], Number(process.argv[4]));
else if (role === 'ws-soak') await runWsSoak(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
else if (role === 'ws-hold') await runWsHold(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
else if (role === 'soak') {
  process.once('exit', () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  });
  try {
    await soak();
  } finally {
    await stopAll();
  }
} else await main();
