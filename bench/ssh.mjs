#!/usr/bin/env node
// Benchmark: scp throughput and interactive round-trip latency through the SSH front door (gateway process →
// instance SSH server process) against a real OpenSSH sshd on the same machine, in the same run, interleaved.
// Loopback only; every process is started here and stopped by PID. Needs root (sshd, sessions as root), Debian
// openssh-server and openssh-client, and a built dist/ (`npm run build`).
//
//   node bench/ssh.mjs [--size-mb 256] [--rounds 3] [--echoes 400]   (BENCH_PROFILE_DIR=dir: CPU profiles of the two hops)
//
// Prints a Markdown table and writes it to bench/results/ssh.md.
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { freePort } from './lib.mjs';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SELF = fileURLToPath(import.meta.url);
const SSHD = '/usr/sbin/sshd';

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}

// ── child roles: the instance server and the front door each run in their own process, as in production ──
const role = arg('role', '');
if (role !== '') {
  const cfg = JSON.parse(process.env.DSPOOL_BENCH_CFG ?? '{}');
  const { createLogger } = await import(pathToFileURL(join(ROOT, 'dist/lib/log.js')).href);
  const log = createLogger(`bench-${role}`, 'warn');
  let handle;
  if (role === 'instance') {
    const { startInstanceSshServer } = await import(pathToFileURL(join(ROOT, 'dist/agent/ssh/index.js')).href);
    handle = await startInstanceSshServer({
      host: '127.0.0.1',
      port: 0,
      internalPublicKey: cfg.internalPublicKey,
      resolveUser: (name) => (name === cfg.user ? { uid: 0, gid: 0, home: cfg.home, shell: '/bin/bash', env: {} } : undefined),
      log,
    });
  } else {
    const { startSshFrontDoor } = await import(pathToFileURL(join(ROOT, 'dist/gateway/ssh/index.js')).href);
    const clientKey = readFileSync(cfg.clientPublicKeyFile, 'utf8').trim().split(/\s+/)[1];
    handle = await startSshFrontDoor({
      host: '127.0.0.1',
      port: 0,
      hostKeyFile: cfg.hostKeyFile,
      internalKey: cfg.internalPrivateKey,
      authenticator: {
        checkPassword: async () => 'denied',
        checkPublicKey: async (user, _algo, data) => (user === cfg.user && data.toString('base64') === clientKey ? 'allowed' : 'denied'),
      },
      locator: { locate: async () => ({ host: '127.0.0.1', port: cfg.instancePort }) },
      log,
    });
  }
  process.stdout.write(`${JSON.stringify({ port: handle.port })}\n`);
  const stop = () => void handle.close().finally(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  await new Promise(() => undefined);
}

// ── the benchmark ──
const SIZE_MB = Number(arg('size-mb', '256'));
const ROUNDS = Number(arg('rounds', '3'));
const ECHOES = Number(arg('echoes', '400'));
/** Client cipher for both paths (`-c`); default: OpenSSH's own choice (chacha20-poly1305). */
const CIPHER = arg('cipher', '');

if (process.getuid?.() !== 0) {
  console.error('bench/ssh.mjs needs root (it runs sshd and sessions as root on loopback)');
  process.exit(2);
}
for (const need of [SSHD, '/usr/bin/scp', '/usr/bin/ssh', join(ROOT, 'dist/gateway/ssh/index.js')]) {
  if (!existsSync(need)) {
    console.error(`bench/ssh.mjs: ${need} is missing (run it as npm run bench:ssh, which installs openssh-server and builds)`);
    process.exit(2);
  }
}

const started = new Set();
function stopAll() {
  for (const child of started) {
    try {
      process.kill(child.pid, 'SIGTERM');
    } catch {
      // gone
    }
  }
}
process.on('exit', stopAll);
process.on('SIGINT', () => process.exit(130));


function startRole(name, cfg) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(process.env.BENCH_PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', process.env.BENCH_PROFILE_DIR] : []), SELF, '--role', name], {
      env: { ...process.env, DSPOOL_BENCH_CFG: JSON.stringify(cfg) },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    started.add(child);
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.split('\n')[0];
      if (out.includes('\n')) resolve({ child, port: JSON.parse(line).port });
    });
    child.once('exit', (code) => reject(new Error(`${name} exited with ${code}`)));
  });
}

function run(file, args, input) {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    started.add(child);
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.resume();
    child.on('error', reject);
    child.on('close', (code) => {
      started.delete(child);
      if (code === 0) resolve();
      else reject(new Error(`${file} exited ${code}: ${stderr}`));
    });
    child.stdin.end(input ?? '');
  });
}

const dir = mkdtempSync(join(os.tmpdir(), 'dspool-bench-ssh-'));
chmodSync(dir, 0o755);
const user = 'root';
try {
  // Keys: the client's, the pool-internal pair, sshd's host key.
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'client_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'internal_key')]);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'sshd_host_key')]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'client_key.pub')), { mode: 0o600 });
  const home = join(dir, 'home');
  mkdirSync(home, { mode: 0o755 });

  // Direct: Debian's sshd on a free port with its own config.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  const sshdPort = await freePort();
  const sshdConfig = join(dir, 'sshd_config');
  writeFileSync(
    sshdConfig,
    [
      `ListenAddress 127.0.0.1:${sshdPort}`,
      `HostKey ${join(dir, 'sshd_host_key')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      'PermitRootLogin prohibit-password',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'UsePAM no',
      'StrictModes no',
      'Subsystem sftp /usr/lib/openssh/sftp-server',
      'LogLevel ERROR',
      '',
    ].join('\n'),
  );
  const sshd = spawn(SSHD, ['-D', '-e', '-f', sshdConfig], { stdio: ['ignore', 'ignore', 'inherit'] });
  started.add(sshd);

  // Through the front door: instance server process + gateway process.
  const instance = await startRole('instance', { internalPublicKey: readFileSync(join(dir, 'internal_key.pub'), 'utf8'), user, home });
  const door = await startRole('door', {
    user,
    instancePort: instance.port,
    internalPrivateKey: readFileSync(join(dir, 'internal_key'), 'utf8'),
    hostKeyFile: join(dir, 'gateway_host_key'),
    clientPublicKeyFile: join(dir, 'client_key.pub'),
  });

  const common = ['-F', '/dev/null', '-q', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', join(dir, 'client_key'), ...(CIPHER ? ['-c', CIPHER] : [])];
  const targets = [
    { name: 'front door', port: door.port },
    { name: 'direct sshd', port: sshdPort },
  ];
  // Wait for sshd to listen.
  for (let i = 0; i < 100; i++) {
    try {
      await run('ssh', [...common, '-p', String(sshdPort), `${user}@127.0.0.1`, 'true']);
      break;
    } catch (error) {
      if (i === 99) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  const source = join(dir, 'payload.bin');
  {
    const out = createWriteStream(source);
    for (let i = 0; i < SIZE_MB; i++) out.write(randomBytes(1024 * 1024));
    await new Promise((resolve) => out.end(resolve));
  }
  const sum = createHash('sha256').update(readFileSync(source)).digest('hex');

  const results = Object.fromEntries(targets.map((t) => [t.name, { up: [], down: [], rtt: [] }]));
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) {
      const remote = join(home, `up-${round}.bin`);
      let t0 = process.hrtime.bigint();
      await run('scp', [...common, '-P', String(t.port), source, `${user}@127.0.0.1:${remote}`]);
      results[t.name].up.push(SIZE_MB / (Number(process.hrtime.bigint() - t0) / 1e9));
      if (statSync(remote).size !== SIZE_MB * 1024 * 1024) throw new Error(`${t.name}: upload size mismatch`);
      const back = join(dir, `down-${round}.bin`);
      t0 = process.hrtime.bigint();
      await run('scp', [...common, '-P', String(t.port), `${user}@127.0.0.1:${remote}`, back]);
      results[t.name].down.push(SIZE_MB / (Number(process.hrtime.bigint() - t0) / 1e9));
      if (round === 0 && createHash('sha256').update(readFileSync(back)).digest('hex') !== sum) throw new Error(`${t.name}: checksum mismatch`);
      rmSync(remote, { force: true });
      rmSync(back, { force: true });
    }
  }

  // Interactive round trip: one line through `cat` and back, ECHOES times per target, interleaved in blocks.
  async function echoes(t, count) {
    const child = spawn('ssh', [...common, '-p', String(t.port), `${user}@127.0.0.1`, 'cat'], { stdio: ['pipe', 'pipe', 'ignore'] });
    started.add(child);
    const rtts = [];
    let pending;
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      if (pending && buf.includes(pending.line)) {
        buf = '';
        const p = pending;
        pending = undefined;
        p.resolve();
      }
    });
    for (let i = 0; i < count + 20; i++) {
      const line = `ping-${i}-${Math.random()}\n`;
      const t0 = process.hrtime.bigint();
      await new Promise((resolve) => {
        pending = { line, resolve };
        child.stdin.write(line);
      });
      if (i >= 20) rtts.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    child.stdin.end();
    await new Promise((resolve) => child.once('close', resolve));
    started.delete(child);
    return rtts;
  }
  for (let block = 0; block < 4; block++) {
    const order = block % 2 === 0 ? targets : [...targets].reverse();
    for (const t of order) results[t.name].rtt.push(...(await echoes(t, Math.ceil(ECHOES / 4))));
  }

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
  const pct = (xs, p) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];
  const f = (x, d = 1) => x.toFixed(d);
  const door_ = results['front door'];
  const direct = results['direct sshd'];
  const rows = [
    `| path | scp upload MB/s (median of ${ROUNDS}) | scp download MB/s | echo RTT p50 ms | echo RTT p99 ms |`,
    '|---|---:|---:|---:|---:|',
    `| direct sshd (${spawnSync('/usr/sbin/sshd', ['-V'], { encoding: 'utf8' }).stderr.trim().split(',')[0] || 'OpenSSH'}) | ${f(median(direct.up))} | ${f(median(direct.down))} | ${f(median(direct.rtt), 3)} | ${f(pct(direct.rtt, 99), 3)} |`,
    `| front door → instance server | ${f(median(door_.up))} | ${f(median(door_.down))} | ${f(median(door_.rtt), 3)} | ${f(pct(door_.rtt, 99), 3)} |`,
    `| ratio / added | ${f(median(door_.up) / median(direct.up), 2)}× | ${f(median(door_.down) / median(direct.down), 2)}× | +${f(median(door_.rtt) - median(direct.rtt), 3)} | +${f(pct(door_.rtt, 99) - pct(direct.rtt, 99), 3)} |`,
  ];
  const header = `SSH benchmark — ${SIZE_MB} MB scp, ${ROUNDS} interleaved rounds, ${door_.rtt.length} echoes per path; ${os.cpus().length} CPUs (${os.cpus()[0]?.model ?? '?'}), node ${process.version}, loopback. Client cipher: ${CIPHER || 'OpenSSH default'}. Target: ≥ 0.7× direct throughput.`;
  const table = `${header}\n\n${rows.join('\n')}\n`;
  console.log(table);
  mkdirSync(join(ROOT, 'bench/results'), { recursive: true });
  writeFileSync(join(ROOT, 'bench/results/ssh.md'), table);
} finally {
  stopAll();
  await new Promise((r) => setTimeout(r, 200));
  rmSync(dir, { recursive: true, force: true });
}
