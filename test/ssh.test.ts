// End-to-end: the real OpenSSH client (ssh, scp, sftp) → SSH front door → instance-side SSH servers, each user
// on their own instance server, sessions running as throwaway Unix accounts.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes, randomInt } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server as HttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pty from 'node-pty';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInstanceSshServer, type InstanceSshServer, type SshUser } from '../src/agent/ssh/index.js';
import { startSshFrontDoor, type SshAuthenticator, type SshFrontDoor, type SessionLocator } from '../src/gateway/ssh/index.js';
import { createLogger } from '../src/lib/log.js';
import { LoginLimiter } from '../src/lib/login-limiter.js';
import { generateEd25519, parseSshKey } from '../src/ssh/keys.js';
import { run, type RunResult as Run } from './harness.js';

const isRoot = process.getuid?.() === 0;
const haveOpenSsh = existsSync('/usr/bin/ssh') && existsSync('/usr/lib/openssh/sftp-server');
const skipReason = !isRoot ? 'needs root (creates Unix accounts)' : !haveOpenSsh ? 'needs Debian openssh-client and openssh-sftp-server' : '';
if (skipReason) console.warn(`test/ssh.test.ts skipped: ${skipReason}`);

const log = createLogger('ssh-test', process.env.DSPOOL_TEST_LOG ?? 'silent');

interface Account {
  name: string;
  uid: number;
  home: string;
  password: string;
  keyFile: string;
  sshUser: SshUser;
}


function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** Pids of processes whose real uid is `uid`. */
function pidsOf(uid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      const match = /^Uid:\s+(\d+)/m.exec(status);
      const state = /^State:\s+(\S)/m.exec(status);
      if (Number(match?.[1]) === uid && state?.[1] !== 'Z') pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

describe.skipIf(skipReason !== '')('SSH front door with the real OpenSSH client', () => {
  let dir: string;
  let alice: Account;
  let bob: Account;
  let aliceInstance: InstanceSshServer;
  let bobInstance: InstanceSshServer;
  let door: SshFrontDoor;
  let http: HttpServer;
  let httpPort: number;
  let strangerKey: string;
  let askpass: string;
  const created: string[] = [];
  const children = new Set<ChildProcess>();
  const located: string[] = [];
  /** Users whose server "the pool stopped": the locator holds them unless a channel asked for a terminal. */
  const held = new Set<string>();
  const asked: Array<{ user: string; interactive: boolean | undefined }> = [];

  function makeAccount(): Account {
    const name = `s${randomBytes(4).toString('hex')}`;
    const uid = 61_000 + randomInt(0, 3_000);
    execFileSync('groupadd', ['-g', String(uid), name]);
    const home = join(dir, 'home', name);
    execFileSync('useradd', ['-u', String(uid), '-g', String(uid), '-d', home, '-M', '-s', '/bin/bash', name]);
    created.push(name);
    mkdirSync(join(home, 'notebooks', 'remote'), { recursive: true });
    for (const p of [home, join(home, 'notebooks'), join(home, 'notebooks', 'remote')]) chownSync(p, uid, uid);
    chmodSync(home, 0o755);
    const keyFile = join(dir, `${name}_key`);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', keyFile]);
    return {
      name,
      uid,
      home,
      password: `pw-${randomBytes(6).toString('hex')}`,
      keyFile,
      sshUser: { uid, gid: uid, home, shell: '/bin/bash', env: { DSPOOL_TEST: 'from-agent' } },
    };
  }

  function keyData(file: string): Buffer {
    const key = parseSshKey(readFileSync(`${file}.pub`, 'utf8'));
    if (key instanceof Error) throw key;
    return key.getPublicSSH();
  }

  const base = (): string[] => [
    '-F',
    '/dev/null',
    '-o',
    'StrictHostKeyChecking=no',
    '-o',
    'UserKnownHostsFile=/dev/null',
    '-o',
    'ConnectTimeout=20',
  ];
  const keyOpts = (keyFile: string): string[] => [...base(), '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', keyFile];
  const sshKey = (user: string, keyFile: string, ...rest: string[]): string[] => [
    ...keyOpts(keyFile),
    '-p',
    String(door.port),
    `${user}@127.0.0.1`,
    ...rest,
  ];
  const passwordEnv = (password: string): NodeJS.ProcessEnv => ({
    SSH_ASKPASS: askpass,
    SSH_ASKPASS_REQUIRE: 'force',
    DSPOOL_TEST_PASSWORD: password,
    DISPLAY: ':0',
  });
  let internal: ReturnType<typeof generateEd25519>;
  const passwordOpts = (): string[] => [
    ...base(),
    '-o',
    'PreferredAuthentications=password',
    '-o',
    'PubkeyAuthentication=no',
    '-o',
    'NumberOfPasswordPrompts=1',
  ];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'dspool-ssh-'));
    chmodSync(dir, 0o755);
    mkdirSync(join(dir, 'home'), { mode: 0o755 });
    chmodSync(join(dir, 'home'), 0o755);
    alice = makeAccount();
    bob = makeAccount();
    while (bob.uid === alice.uid) bob = makeAccount();
    const stranger = join(dir, 'stranger_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
    strangerKey = stranger;
    askpass = join(dir, 'askpass.sh');
    writeFileSync(askpass, '#!/bin/sh\nprintf "%s\\n" "$DSPOOL_TEST_PASSWORD"\n', { mode: 0o755 });

    internal = generateEd25519('dspool-internal');
    // Each user has their own instance on its own address; their servers and forwards stay there.
    aliceInstance = await startInstanceSshServer({
      host: '127.0.0.2',
      internalPublicKey: internal.publicKey,
      resolveUser: (name) => (name === alice.name ? alice.sshUser : undefined),
      killGraceMs: 500,
      log,
    });
    bobInstance = await startInstanceSshServer({
      host: '127.0.0.3',
      internalPublicKey: internal.publicKey,
      resolveUser: (name) => (name === bob.name ? bob.sshUser : undefined),
      killGraceMs: 500,
      log,
    });
    http = createServer((_req, res) => res.end('hello from alice instance'));
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.2', resolve));
    const address = http.address();
    httpPort = typeof address === 'object' && address !== null ? address.port : 0;

    const accounts = [alice, bob];
    const authenticator: SshAuthenticator = {
      checkPassword: async (user, password) => {
        const account = accounts.find((a) => a.name === user);
        if (account === undefined) return 'unknown';
        return password === account.password ? 'allowed' : 'denied';
      },
      checkPublicKey: async (user, _algo, data) => {
        const account = accounts.find((a) => a.name === user);
        if (account === undefined) return 'unknown';
        return keyData(account.keyFile).equals(data) ? 'allowed' : 'denied';
      },
    };
    const locator: SessionLocator = {
      locate: async (user, onProgress, _signal, options) => {
        asked.push({ user, interactive: options?.interactive });
        if (held.has(user) && options?.interactive !== true) return { held: `your server was stopped; start it with ssh -t (${user})` };
        located.push(user);
        onProgress(`starting a session for ${user}…`);
        await new Promise((r) => setTimeout(r, 200));
        onProgress('session ready');
        const instance = user === alice.name ? aliceInstance : bobInstance;
        return { host: user === alice.name ? '127.0.0.2' : '127.0.0.3', port: instance.port, hostKey: instance.hostPublicKey };
      },
    };
    door = await startSshFrontDoor({
      host: '127.0.0.1',
      port: 0,
      hostKeyFile: join(dir, 'gateway', 'ssh_host_ed25519_key'),
      internalKey: internal.privateKey,
      authenticator,
      locator,
      rateLimit: { perPair: 1000, perAddress: 1000 },
      waitKeepaliveMs: 100,
      log,
    });
  });

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await door?.close();
    await aliceInstance?.close();
    await bobInstance?.close();
    await new Promise<void>((resolve) => (http ? http.close(() => resolve()) : resolve()));
    for (const name of created) {
      try {
        execFileSync('userdel', ['-f', name], { stdio: 'ignore' });
      } catch {
        // already gone
      }
      try {
        execFileSync('groupdel', [name], { stdio: 'ignore' });
      } catch {
        // removed with the user
      }
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('runs a command as the user with the environment a Jupyter terminal gets, and returns its exit code', async () => {
    const result = await run('ssh', sshKey(alice.name, alice.keyFile, 'echo "$USER|$LOGNAME|$HOME|$SHELL|$DSPOOL_TEST"; id -u; test -d "$HOME/notebooks/remote" && echo remote-ok; echo "$PATH"; pwd; echo err >&2; exit 7'));
    expect(result.code).toBe(7);
    const lines = result.stdout.trim().split('\n');
    expect(lines[0]).toBe(`${alice.name}|${alice.name}|${alice.home}|/bin/bash|from-agent`);
    expect(lines[1]).toBe(String(alice.uid));
    expect(lines[2]).toBe('remote-ok');
    expect(lines[3]).toContain('/usr/bin');
    expect(lines[4]).toBe(alice.home);
    expect(result.stderr).toContain('err');
    // Progress goes to the banner (stderr), never stdout.
    expect(result.stderr).toContain(`dspool: starting a session for ${alice.name}`);
    expect(result.stdout).not.toContain('dspool:');
  });

  it('authenticates with a password through SSH_ASKPASS', async () => {
    const result = await run('ssh', [...passwordOpts(), '-p', String(door.port), `${bob.name}@127.0.0.1`, 'whoami'], {
      env: passwordEnv(bob.password),
    });
    expect(result.stderr).not.toContain('Permission denied');
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe(bob.name);
  });

  it('rejects a wrong password, an unregistered key and an unknown user', async () => {
    const wrongPassword = await run('ssh', [...passwordOpts(), '-p', String(door.port), `${alice.name}@127.0.0.1`, 'true'], {
      env: passwordEnv('not-the-password'),
    });
    expect(wrongPassword.code).toBe(255);
    expect(wrongPassword.stderr).toContain('Permission denied');
    const wrongKey = await run('ssh', sshKey(alice.name, strangerKey, 'true'));
    expect(wrongKey.code).toBe(255);
    expect(wrongKey.stderr).toContain('Permission denied');
    const unknown = await run('ssh', sshKey('nosuchuser', alice.keyFile, 'true'));
    expect(unknown.code).toBe(255);
    const badName = await run('ssh', sshKey('Alice', alice.keyFile, 'true'));
    expect(badName.code).toBe(255);
    expect(badName.stderr).toContain('must be lowercase');
  });

  it('does not let bob open a session as alice with his key or his password', async () => {
    const before = located.length;
    const withKey = await run('ssh', sshKey(alice.name, bob.keyFile, 'true'));
    expect(withKey.code).toBe(255);
    const withPassword = await run('ssh', [...passwordOpts(), '-p', String(door.port), `${alice.name}@127.0.0.1`, 'true'], {
      env: passwordEnv(bob.password),
    });
    expect(withPassword.code).toBe(255);
    expect(located.length).toBe(before);
  });

  it('gives an interactive shell a pty and follows window resizes', async () => {
    const term = pty.spawn('/usr/bin/ssh', ['-tt', ...sshKey(alice.name, alice.keyFile)], { cols: 100, rows: 30, name: 'xterm', env: process.env as Record<string, string> });
    let output = '';
    term.onData((d) => (output += d));
    try {
      term.write('echo "tty=$(tty)"; stty size; echo MARK1\r');
      await waitFor(() => /30 100\r?\n(?:.*\r?\n)?MARK1/.test(output), 20_000, `first stty size (got ${JSON.stringify(output.slice(-400))})`);
      expect(output).toMatch(/tty=\/dev\/pts\/\d+/);
      term.resize(120, 40);
      await new Promise((r) => setTimeout(r, 300));
      term.write('stty size; echo MARK2\r');
      await waitFor(() => /40 120\r?\n(?:.*\r?\n)?MARK2/.test(output), 20_000, `resized stty size (got ${JSON.stringify(output.slice(-400))})`);
      term.write('exit 3\r');
      const code = await new Promise<number>((resolve) => term.onExit(({ exitCode }) => resolve(exitCode)));
      expect(code).toBe(3);
    } finally {
      term.kill();
    }
  });

  it('copies a 50 MB file up and down with scp, byte for byte', async () => {
    const source = join(dir, 'fifty.bin');
    writeFileSync(source, randomBytes(50 * 1024 * 1024));
    const up = await run('scp', [...keyOpts(alice.keyFile), '-P', String(door.port), source, `${alice.name}@127.0.0.1:fifty.bin`], { timeoutMs: 60_000 });
    expect(up.stderr).not.toMatch(/error|refused/i);
    expect(up.code).toBe(0);
    const remote = join(alice.home, 'fifty.bin');
    expect(statSync(remote).uid).toBe(alice.uid);
    expect(sha256(remote)).toBe(sha256(source));
    const back = join(dir, 'fifty.back');
    const down = await run('scp', [...keyOpts(alice.keyFile), '-P', String(door.port), `${alice.name}@127.0.0.1:fifty.bin`, back], { timeoutMs: 60_000 });
    expect(down.code).toBe(0);
    expect(sha256(back)).toBe(sha256(source));
    rmSync(remote);
  });

  it('lists and renames files with sftp', async () => {
    const file = join(alice.home, 'notes.txt');
    writeFileSync(file, 'hi');
    chownSync(file, alice.uid, alice.uid);
    const result = await run('sftp', [...keyOpts(alice.keyFile), '-P', String(door.port), '-b', '-', `${alice.name}@127.0.0.1`], {
      input: 'ls -1\nrename notes.txt renamed.txt\nls -1\n',
    });
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('notes.txt');
    expect(result.stdout).toContain('renamed.txt');
    expect(existsSync(join(alice.home, 'renamed.txt'))).toBe(true);
    expect(existsSync(file)).toBe(false);
  });

  it('forwards -L to a port on the user’s own instance', async () => {
    const local = await freePort();
    const child = spawn('ssh', ['-N', '-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${local}:127.0.0.2:${httpPort}`, ...sshKey(alice.name, alice.keyFile)], { stdio: 'ignore' });
    children.add(child);
    try {
      let body = '';
      await waitFor(
        async () => {
          try {
            body = await (await fetch(`http://127.0.0.1:${local}/`)).text();
            return true;
          } catch {
            return false;
          }
        },
        20_000,
        'the forward',
      );
      expect(body).toBe('hello from alice instance');
    } finally {
      child.kill('SIGTERM');
      children.delete(child);
    }
  });

  it('lets bob forward only to his own instance, not to alice’s', async () => {
    const socks = await freePort();
    const child = spawn('ssh', ['-N', '-D', `127.0.0.1:${socks}`, ...sshKey(bob.name, bob.keyFile)], { stdio: 'ignore' });
    children.add(child);
    try {
      await waitFor(async () => (await run('bash', ['-c', `exec 3<>/dev/tcp/127.0.0.1/${socks}`])).code === 0, 20_000, 'the SOCKS port');
      const toAlice = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${socks}`, `http://127.0.0.2:${httpPort}/`]);
      expect(toAlice.code).not.toBe(0);
      expect(toAlice.stdout).not.toContain('hello');
      const elsewhere = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${socks}`, 'http://198.18.0.1:80/']);
      expect(elsewhere.code).not.toBe(0);
    } finally {
      child.kill('SIGTERM');
      children.delete(child);
    }
  });

  it('supports the VS Code Remote-SSH sequence: exec a script, then connect to the port it printed', async () => {
    const socks = await freePort();
    const child = spawn('ssh', ['-T', '-D', `127.0.0.1:${socks}`, ...sshKey(alice.name, alice.keyFile), 'bash'], { stdio: ['pipe', 'pipe', 'pipe'] });
    children.add(child);
    try {
      let out = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stdin?.write(
        [
          'cd "$HOME"',
          `exec /usr/bin/python3 -u -c 'import http.server as h; s = h.HTTPServer(("127.0.0.1", 0), h.SimpleHTTPRequestHandler); print("listeningOn==%d==" % s.server_address[1], flush=True); s.serve_forever()' 2>/dev/null`,
          '',
        ].join('\n'),
      );
      await waitFor(() => /listeningOn==\d+==/.test(out), 20_000, 'the server port');
      const port = /listeningOn==(\d+)==/.exec(out)?.[1];
      const pids = pidsOf(alice.uid);
      expect(pids.length).toBeGreaterThan(0);
      const page = await run('curl', ['-sS', '--max-time', '10', '--socks5-hostname', `127.0.0.1:${socks}`, `http://127.0.0.1:${port}/`]);
      expect(page.code).toBe(0);
      expect(page.stdout).toContain('notebooks/');
      child.kill('SIGKILL');
      await waitFor(() => pids.every((pid) => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/status`, 'utf8').includes('State:\tZ')), 10_000, 'the server to be ended');
    } finally {
      child.kill('SIGKILL');
      children.delete(child);
    }
  });

  it('accepts only listed environment variables from the client', async () => {
    const result = await run('ssh', ['-o', 'SetEnv=LC_DSPOOL=yes EVIL_VAR=no LD_PRELOAD=/tmp/x.so', ...sshKey(alice.name, alice.keyFile, 'echo "[$LC_DSPOOL][$EVIL_VAR][$LD_PRELOAD]"')]);
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toBe('[yes][][]');
  });

  it('refuses an unsupported subsystem cleanly', async () => {
    const result = await run('ssh', [...sshKey(alice.name, alice.keyFile), '-s', 'nosuch']);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toMatch(/subsystem request failed/i);
  });

  it('propagates a signal that kills the remote command', async () => {
    const result = await run('ssh', sshKey(alice.name, alice.keyFile, 'kill -TERM $$'));
    // OpenSSH exits 255 when the remote command died of a signal.
    expect(result.code).toBe(255);
  });

  it('leaves no process behind when the client disconnects in the middle of scp', async () => {
    await waitFor(() => pidsOf(alice.uid).length === 0, 10_000, 'alice to have no processes');
    const source = join(dir, 'slow.bin');
    writeFileSync(source, randomBytes(20 * 1024 * 1024));
    // -l 4000 Kbit/s: 20 MB take 40 s, so the copy is surely still running when the client is killed.
    const child = spawn('scp', [...keyOpts(alice.keyFile), '-l', '4000', '-P', String(door.port), source, `${alice.name}@127.0.0.1:slow.bin`], { stdio: 'ignore' });
    children.add(child);
    let pids: number[] = [];
    try {
      await waitFor(() => existsSync(join(alice.home, 'slow.bin')) && statSync(join(alice.home, 'slow.bin')).size > 0, 20_000, 'the upload to start');
      pids = pidsOf(alice.uid);
      expect(pids.length).toBeGreaterThan(0);
      child.kill('SIGKILL');
    } finally {
      children.delete(child);
    }
    await waitFor(() => pids.every((pid) => !existsSync(`/proc/${pid}`)), 10_000, `processes ${pids.join(',')} to end`);
    expect(pidsOf(alice.uid)).toEqual([]);
    expect(statSync(join(alice.home, 'slow.bin')).size).toBeLessThan(20 * 1024 * 1024);
  });

  it('passes the client address to the password check, so failures from one address never lock the user out of another', async () => {
    // The hub's side (a process boundary) is played by the same LoginLimiter the hub uses.
    const limiter = new LoginLimiter({ perPair: 2, perAddress: 100, windowMs: 60_000 });
    const seen = new Set<string>();
    const strict = await startSshFrontDoor({
      host: '127.0.0.1',
      port: 0,
      hostKeyFile: join(dir, 'gateway', 'ssh_host_ed25519_key'),
      internalKey: internal.privateKey,
      authenticator: {
        async checkPassword(user, password, address) {
          seen.add(address);
          const attempt = await limiter.attempt(user, address, async () => user === alice.name && password === alice.password, (ok) => !ok);
          if (attempt.outcome === 'limited') return { retryAfterMs: attempt.retryAfterMs };
          if (attempt.outcome === 'busy') return 'busy';
          return attempt.value ? 'allowed' : 'denied';
        },
        checkPublicKey: async () => 'denied',
      },
      locator: { locate: async () => ({ host: '127.0.0.2', port: aliceInstance.port }) },
      rateLimit: { perPair: 2, perAddress: 100, windowMs: 60_000 },
      log,
    });
    try {
      expect(strict.hostPublicKey).toBe(door.hostPublicKey);
      const attempt = (password: string, from: string): Promise<Run> =>
        run('ssh', [...passwordOpts(), '-b', from, '-p', String(strict.port), `${alice.name}@127.0.0.1`, 'true'], { env: passwordEnv(password) });
      expect((await attempt('wrong-1', '127.0.0.1')).code).toBe(255);
      expect((await attempt('wrong-2', '127.0.0.1')).code).toBe(255);
      const blocked = await attempt(alice.password, '127.0.0.1');
      expect(blocked.code).toBe(255);
      expect(blocked.stderr).toContain('too many failed logins');
      // The same user from another address is checked and let in.
      const elsewhere = await attempt(alice.password, '127.0.0.3');
      expect(elsewhere.code, elsewhere.stderr).toBe(0);
      expect([...seen].sort()).toEqual(['127.0.0.1', '127.0.0.3']);
    } finally {
      await strict.close();
      await strict.close();
    }
  });

  it('holds a user whose server the pool stopped: without a terminal nothing is located, with one it is', async () => {
    held.add(bob.name);
    try {
      const before = located.length;
      // VS Code's reconnect (`-T`, a command fed on stdin, a SOCKS forward), a plain command, sftp: told why, exit 1.
      const socks = await freePort();
      const editor = await run('ssh', [...sshKey(bob.name, bob.keyFile), '-T', '-D', `127.0.0.1:${socks}`, 'bash'], { input: 'echo agent-ran\n' });
      expect(editor.code).toBe(1);
      expect(editor.stdout).not.toContain('agent-ran');
      expect(editor.stderr).toContain(`dspool: your server was stopped; start it with ssh -t (${bob.name})`);
      const command = await run('ssh', sshKey(bob.name, bob.keyFile, 'true'));
      expect([command.code, command.stderr.includes('start it with ssh -t')]).toEqual([1, true]);
      const sftp = await run('sftp', [...keyOpts(bob.keyFile), '-P', String(door.port), '-b', '-', `${bob.name}@127.0.0.1`], { input: 'pwd\n' });
      expect(sftp.code).not.toBe(0);
      expect(sftp.stderr).toContain('start it with ssh -t');
      expect(located.length).toBe(before);
      expect(asked.filter((a) => a.user === bob.name).slice(-3).map((a) => a.interactive)).toEqual([undefined, undefined, undefined]);
      // A terminal asks again, as interactive: located, with the progress on stderr, and the command runs.
      const terminal = await run('ssh', ['-tt', ...sshKey(bob.name, bob.keyFile, 'echo "ran-$((6*7))"')]);
      expect(terminal.code, terminal.stderr).toBe(0);
      expect(terminal.stdout).toContain('ran-42');
      expect(terminal.stdout).not.toContain('dspool:');
      expect(terminal.stderr).toContain(`dspool: starting a session for ${bob.name}…`);
      expect(asked.at(-1)).toEqual({ user: bob.name, interactive: true });
      expect(located.length).toBe(before + 1);
    } finally {
      held.delete(bob.name);
    }
  });
});
