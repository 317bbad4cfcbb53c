#!/usr/bin/env node
// Benchmark: waking a pool from zero. One `dspool up` with autoscaling on and `pool.min: 0` (local provider,
// through its gateway), rounds interleaved in the same run:
//   - from zero: the pool has no instance; POST /hub/api/users/<a>/server, wait until ready, create a kernel,
//     run `1+1` over its WebSocket — the autoscaler starts an instance for the queued request;
//   - warm: right after, with that instance up, the same for user <b> (it lands on the instance already there).
// Both servers are then stopped and the pool goes back to zero before the next round.
// Prints a Markdown table (also written to bench/results/wake.md).
//
//   npm run bench:wake                     # 5 rounds
//   BENCH_ROUNDS=3 npm run bench:wake
// Must run as root (dspool creates Unix accounts). Loopback only; `dspool up` is stopped with SIGINT (it stops its
// instances and servers), the temp dir and the accounts are removed at the end.
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { api, firstKernelResult } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'dspool.js');
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const STEP_TIMEOUT_MS = 90_000;
const TAG = `w${randomBytes(3).toString('hex')}`;
const log = (...args) => console.error(...args);

if (process.getuid?.() !== 0) {
  log('bench:wake must run as root (dspool creates Unix accounts for its users)');
  process.exit(2);
}

/** UIDs for this run, and its own team group (so it never fights another pool's over one GID). */
function usersLine() {
  return `users: { uidBase: ${40000 + Math.floor(Math.random() * 2000) * 10}, teamGroup: tg${TAG} }`;
}

const dir = mkdtempSync(join(os.tmpdir(), `dspool-wake-${TAG}-`));
chmodSync(dir, 0o755);
const config = join(dir, 'pool.yaml');
const users = [`${TAG}a`, `${TAG}b`];
writeFileSync(
  config,
  [
    'dataDir: ./state',
    'share: { path: ./share }',
    'gateway: { host: 127.0.0.1, port: 0, sshPort: null }',
    'hub: { host: 127.0.0.1, port: 0, heartbeatInterval: 1s }',
    'provider: { type: local }',
    'pool: { instances: 0, min: 0, max: 2, autoscale: { enabled: true, interval: 1s, scaleInDelay: 1s } }',
    usersLine(),
    'log: { level: warn }',
    '',
  ].join('\n'),
);

const child = spawn(process.execPath, [BIN, 'up', '--config', config], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
let output = '';
child.stderr.on('data', (d) => (output = (output + d).slice(-20_000)));

async function waitUntil(what, probe) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`);
    await sleep(50);
  }
}

/** POST → ready → kernel → `1+1`; returns ms from the POST, and the phases. */
async function firstResult(url, user, token) {
  const r = await firstKernelResult(url, user, token, { timeoutMs: STEP_TIMEOUT_MS });
  return { total: r.tResult - r.tPost, ready: r.tReady - r.tPost };
}

const median = (values) => {
  const s = [...values].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const fmt = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`);

let exitCode = 0;
try {
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dspool not ready in 90 s:\n${output}`)), 90_000);
    child.stdout.on('data', (d) => {
      output += d;
      const match = /dspool is ready at (http:\/\/\S+?)\/?\s/.exec(output);
      if (match) (clearTimeout(timer), resolve(match[1]));
    });
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`dspool up exited with ${code}:\n${output}`))));
  });
  const cli = (args, stdin = '') => {
    const r = spawnSync(process.execPath, [BIN, ...args, '--config', config], { cwd: dir, input: stdin, encoding: 'utf8', timeout: 60_000 });
    if (r.status !== 0) throw new Error(`dspool ${args.join(' ')}: exit ${r.status}: ${r.stderr}`);
    return r.stdout.trim();
  };
  const tokens = {};
  for (const user of users) {
    cli(['users', 'add', user, '--password-stdin'], `${randomBytes(12).toString('hex')}\n`);
    tokens[user] = cli(['token', user]);
  }
  const admin = `${TAG}r`;
  users.push(admin);
  cli(['users', 'add', admin, '--admin', '--password-stdin'], `${randomBytes(12).toString('hex')}\n`);
  const adminToken = cli(['token', admin]);
  const instances = async () => (await api(url, '/hub/api/instances', { token: adminToken })).json ?? [];
  const cold = [];
  const warm = [];
  for (let round = 1; round <= ROUNDS; round++) {
    await waitUntil('an empty pool', async () => (await instances()).length === 0);
    const [a, b] = users;
    cold.push(await firstResult(url, a, tokens[a]));
    warm.push(await firstResult(url, b, tokens[b]));
    log(`round ${round}: from zero ${fmt(cold.at(-1).total)}, warm ${fmt(warm.at(-1).total)}`);
    for (const user of [a, b]) await api(url, `/hub/api/users/${user}/server`, { method: 'DELETE', token: tokens[user] });
  }
  const rows = [
    ['start → first kernel result (median)', median(cold.map((r) => r.total)), median(warm.map((r) => r.total))],
    ['  … of which POST → server ready', median(cold.map((r) => r.ready)), median(warm.map((r) => r.ready))],
    ['slowest of the rounds', Math.max(...cold.map((r) => r.total)), Math.max(...warm.map((r) => r.total))],
  ];
  const table = [
    `| metric (${ROUNDS} rounds, interleaved) | from zero instances | warm instance | difference |`,
    '|---|---:|---:|---:|',
    ...rows.map(([name, c, w]) => `| ${name} | ${fmt(c)} | ${fmt(w)} | +${fmt(c - w)} |`),
  ].join('\n');
  console.log(table);
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench', 'results', 'wake.md'), `${table}\n`);
} catch (error) {
  log(`bench:wake failed: ${error.stack ?? error}\n--- dspool output ---\n${output}`);
  exitCode = 1;
} finally {
  if (child.exitCode === null) {
    const exited = once(child, 'exit');
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
  }
  for (const user of users) {
    spawnSync('userdel', [user], { stdio: 'ignore' });
    spawnSync('groupdel', [user], { stdio: 'ignore' });
  }
  rmSync(dir, { recursive: true, force: true });
}
process.exit(exitCode);
