// Starts a real pool (`dspool up` as a child process) in a temp dir for end-to-end tests, and drives it the way
// a user would: the CLI, HTTP through the gateway, and Jupyter's WebSocket.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import WebSocket from 'ws';
import { readRuntime, type RuntimeInfo } from '../src/hub/runtime.js';
import { pidAlive } from '../src/lib/process.js';

export const ROOT = resolve(import.meta.dirname, '..');
export const BIN = join(ROOT, 'bin', 'dspool.js');
export const IS_ROOT = process.getuid?.() === 0;

/** Random suffix for names that must not collide between suites running in parallel. */
export const rand = (): string => Math.random().toString(36).slice(2, 8);

/**
 * Polls `probe` every 300 ms until it gives something truthy, and returns that; after `timeoutMs` throws, naming
 * `what` and adding what `context()` says (the state worth reading when it did not happen). A probe may be
 * synchronous (a client's collected output).
 *
 * @example
 * const ready = await waitFor('the host ready', async () => (await instances()).find((i) => i.state === 'ready'), 90_000, async () => pool.output);
 * await waitFor('the shell', () => terminal.output().length > 0, 30_000);
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  timeoutMs: number,
  context?: () => Promise<string>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const value = await probe();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${what} did not happen in time (${timeoutMs} ms)${context ? `; ${await context()}` : ''}`);
}

/**
 * OpenSSH client options for a test's key login at the pool's front door: no user config, no known_hosts (each
 * test pool has a new host key), the key only, never a prompt.
 *
 * @example
 * await run('/usr/bin/ssh', [...sshKeyOptions(key, pool.sshPort), `${user}@127.0.0.1`, 'true']);
 */
export function sshKeyOptions(key: string, port: number): string[] {
  return [
    '-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=30',
    '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', key, '-p', String(port),
  ];
}

/** An OpenSSH client kept open: its output so far (apart and together), its exit, and its stdin. */
export interface SshClient {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  stdout(): string;
  stderr(): string;
  /** stdout and stderr in the order they came. */
  output(): string;
  write(text: string): void;
}

/**
 * Starts `/usr/bin/ssh` with `args` and keeps stdin open; the client is in `children` (for the suite's clean-up)
 * until it exits.
 *
 * @example
 * const shell = openSshClient([...sshKeyOptions(key, pool.sshPort), '-tt', `${user}@127.0.0.1`], children);
 * shell.write('sleep 600\n');
 */
export function openSshClient(args: readonly string[], children: Set<ChildProcess>): SshClient {
  const child = spawn('/usr/bin/ssh', args, { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  let output = '';
  child.stdout?.on('data', (d: Buffer) => {
    stdout += d.toString();
    output += d.toString();
  });
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    output += d.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      children.delete(child);
      resolve(code);
    }),
  );
  return { child, exited, stdout: () => stdout, stderr: () => stderr, output: () => output, write: (text) => void child.stdin?.write(text) };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the dspool CLI to completion. */
export function cli(args: readonly string[], options: { stdin?: string; cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd ?? ROOT, env: { ...process.env, ...options.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => done({ code, stdout, stderr }));
    child.stdin.end(options.stdin ?? '');
  });
}

export interface PoolOptions {
  instances?: number;
  /** The whole `pool:` value as flow YAML (e.g. `{ instances: 0, min: 0, autoscale: { enabled: true } }`); overrides `instances`. */
  pool?: string;
  extraYaml?: string;
  /** Turn the SSH front door on (an ephemeral port). */
  ssh?: boolean;
  /** More keys of the `gateway:` map, as YAML flow items (e.g. `userHost: "{user}.localhost"`). */
  gateway?: string;
  /**
   * pool.yaml `users.passwordMinLength`. Suites use short throwaway passwords; the policy's default (8) is tested
   * where it matters (test/cli.test.ts, test/newcomer.test.ts).
   * @default 2
   */
  passwordMinLength?: number;
  /** Replaces the `hub:` line (e.g. an address on a test namespace's link). */
  hubYaml?: string;
  /** Replaces the `provider:` line. */
  providerYaml?: string;
  /** More keys of the `pool:` mapping, e.g. `cull: { idleTimeout: 10s }`. */
  poolYaml?: string;
  /** Replaces the `share:` line (e.g. a `share.mount` for the agents to mount). */
  shareYaml?: string;
}

/** A running pool for one suite. */
export class TestPool {
  readonly dir: string;
  readonly config: string;
  readonly share: string;
  readonly uidBase: number;
  /** The pool's own team group, so suites running at once do not share (and fight over) one. */
  readonly teamGroup = `tg${rand()}`;
  url = '';
  /** Port of the SSH front door, when `ssh` was asked for. */
  sshPort = 0;
  private child: ChildProcess | undefined;
  output = '';
  private readonly createdUsers = new Set<string>();

  private readonly wantsSsh: boolean;

  constructor(options: PoolOptions = {}) {
    this.wantsSsh = options.ssh ?? false;
    this.dir = mkdtempSync(join(tmpdir(), 'dspool-e2e-'));
    chmodSync(this.dir, 0o755);
    this.share = join(this.dir, 'share');
    this.config = join(this.dir, 'pool.yaml');
    this.uidBase = 40000 + Math.floor(Math.random() * 20000) * 10;
    writeFileSync(
      this.config,
      [
        'dataDir: ./state',
        options.shareYaml ?? 'share: { path: ./share }',
        `gateway: { host: 127.0.0.1, port: 0, sshPort: ${options.ssh ? 0 : 'null'}${options.gateway ? `, ${options.gateway}` : ''} }`,
        options.hubYaml ?? 'hub: { host: 127.0.0.1, port: 0, heartbeatInterval: 1s }',
        options.providerYaml ?? 'provider: { type: local }',
        // A suite's own `pool:` (option or a section in extraYaml) replaces this one: YAML refuses a key given twice.
        options.pool !== undefined ? `pool: ${options.pool}`
          : /^pool:/m.test(options.extraYaml ?? '') ? '' : `pool: { instances: ${options.instances ?? 2}${options.poolYaml ? `, ${options.poolYaml}` : ''} }`,
        `users: { uidBase: ${this.uidBase}, teamGroup: ${this.teamGroup}, passwordMinLength: ${options.passwordMinLength ?? 2} }`,
        'log: { level: warn }',
        options.extraYaml ?? '',
      ].join('\n'),
    );
  }

  /** Starts `dspool up` and resolves once it printed its address. */
  async start(timeoutMs = 90_000): Promise<void> {
    const child = spawn(process.execPath, [BIN, 'up', '--config', this.config], { cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    child.stderr?.on('data', (d: Buffer) => (this.output += d.toString()));
    await new Promise<void>((resolvePromise, reject) => {
      const timer = setTimeout(() => reject(new Error(`pool not ready in time:\n${this.output}`)), timeoutMs);
      child.stdout?.on('data', (d: Buffer) => {
        this.output += d.toString();
        const match = /dspool is ready at (http:\/\/\S+?)\/?\s/.exec(this.output);
        const ssh = /dspool SSH front door at ssh:\/\/\S+:(\d+)/.exec(this.output);
        if (match?.[1] && (!this.wantsSsh || ssh?.[1])) {
          clearTimeout(timer);
          this.url = match[1];
          this.sshPort = Number(ssh?.[1] ?? 0);
          resolvePromise();
        }
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`dspool up exited with ${code}:\n${this.output}`));
      });
    });
  }

  /** Runs a CLI command against this pool. */
  cli(args: readonly string[], stdin?: string): Promise<CliResult> {
    return cli([...args, '--config', this.config], { stdin, cwd: this.dir });
  }

  /** Adds a user (with a password) and returns a fresh API token for them. */
  async addUser(name: string, password: string, admin = false): Promise<string> {
    const added = await this.cli(['users', 'add', name, '--password-stdin', ...(admin ? ['--admin'] : [])], `${password}\n`);
    if (added.code !== 0) throw new Error(`users add ${name} failed: ${added.stderr}`);
    this.createdUsers.add(name);
    const token = await this.cli(['token', name]);
    if (token.code !== 0) throw new Error(`token ${name} failed: ${token.stderr}`);
    return token.stdout.trim();
  }

  /**
   * Makes an ed25519 key pair at `keyFile` (no passphrase) and registers its public half for `user`, as
   * `dspool users keys add` does.
   *
   * @example
   * await pool.addSshKey('alice', join(pool.dir, 'alice-key'));
   */
  async addSshKey(user: string, keyFile: string): Promise<void> {
    const made = await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
    if (made.code !== 0) throw new Error(`ssh-keygen failed: ${made.stderr}`);
    const added = await this.cli(['users', 'keys', 'add', user, `${keyFile}.pub`]);
    if (added.code !== 0) throw new Error(`users keys add ${user} failed: ${added.stderr}`);
  }

  /** `fetch` against the gateway. */
  fetch(path: string, init: RequestInit & { token?: string; cookie?: string } = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (init.token) headers.set('authorization', `token ${init.token}`);
    if (init.cookie) headers.set('cookie', init.cookie);
    return fetch(`${this.url}${path}`, { ...init, headers, redirect: 'manual' });
  }

  /**
   * GETs a page as a browser would and returns the CSRF token of its forms, with the Cookie header to post them
   * with (`cookie` plus the pre-login CSRF cookie the page may have set).
   */
  async formToken(path: string, cookie = '', headers: Record<string, string> = {}): Promise<{ token: string; cookie: string }> {
    const page = await this.fetch(path, { cookie: cookie || undefined, headers: { accept: 'text/html', ...headers } });
    const html = await page.text();
    const token = /name="_xsrf" value="([^"]+)"/.exec(html)?.[1];
    if (token === undefined) throw new Error(`no CSRF token on ${path} (HTTP ${page.status})`);
    const set = (page.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    return { token, cookie: [cookie, set].filter((part) => part !== '').join('; ') };
  }

  /**
   * Posts the login form as a browser would (with its CSRF token and Origin); `headers` are added to the POST. With
   * no `next` the login leads to the user's server and starts it (as a browser's first visit does).
   */
  async postLogin(username: string, password: string, headers: Record<string, string> = {}, next?: string): Promise<Response> {
    const form = await this.formToken('/hub/login', '', headers);
    return this.fetch(next === undefined ? '/hub/login' : `/hub/login?next=${encodeURIComponent(next)}`, {
      method: 'POST',
      cookie: form.cookie,
      body: new URLSearchParams({ username, password, _xsrf: form.token }),
      headers: { origin: this.url, ...headers },
    });
  }

  /**
   * Logs in through the form and returns the Cookie header value. It lands on `next` (the home page by default), so
   * it starts no server; `null` logs in as a browser's first visit does (no `next`: the server starts).
   */
  async login(username: string, password: string, next: string | null = '/hub/home'): Promise<string> {
    const response = await this.postLogin(username, password, {}, next ?? undefined);
    if (response.status !== 302) throw new Error(`login failed: ${response.status}`);
    const cookie = response.headers.get('set-cookie') ?? '';
    return cookie.split(';')[0] ?? '';
  }

  /** Starts a user's server through the API and waits until it is ready. */
  async startServer(user: string, token: string, timeoutMs = 60_000): Promise<{ instance: string; status: number }> {
    const response = await this.fetch(`/hub/api/users/${user}/server`, { method: 'POST', token });
    if (response.status !== 201 && response.status !== 202) throw new Error(`start ${user}: ${response.status} ${await response.text()}`);
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const model = (await (await this.fetch(`/hub/api/users/${user}`, { token })).json()) as {
        servers: Record<string, { ready: boolean; instance: string }>;
      };
      const server = model.servers[''];
      if (server?.ready) return { instance: server.instance, status: response.status };
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${user}'s server not ready in time`);
  }

  /** The running hub's `runtime.json` (its pid and URL), or undefined while none is written. */
  runtime(): RuntimeInfo | undefined {
    return readRuntime(join(this.dir, 'state'));
  }

  /**
   * `kill -9` of the hub; resolves with the new hub's pid once `dspool up` has started another that answers.
   *
   * @example
   * const newPid = await pool.killHub();
   */
  async killHub(timeoutMs = 30_000): Promise<number> {
    const oldPid = this.runtime()?.pid;
    if (oldPid === undefined) throw new Error('no hub runs: no runtime.json');
    process.kill(oldPid, 'SIGKILL');
    return waitFor('a new hub after kill -9 of the old one', async () => {
      const pid = this.runtime()?.pid;
      if (pid === undefined || pid === oldPid || !pidAlive(pid)) return undefined;
      return (await this.fetch('/hub/health').catch(() => undefined))?.status === 200 ? pid : undefined;
    }, timeoutMs);
  }

  /** Stops the pool with SIGINT and waits for `dspool up` to exit; returns its exit code. */
  async stop(): Promise<number | null> {
    const child = this.child;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
    child.kill('SIGINT');
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  }

  /** Stops the pool (if running), removes accounts it created and its directory. */
  async cleanup(): Promise<void> {
    await this.stop();
    if (IS_ROOT) {
      for (const user of this.createdUsers) {
        spawnSync('userdel', [user], { stdio: 'ignore' });
        spawnSync('groupdel', [user], { stdio: 'ignore' });
      }
      spawnSync('groupdel', [this.teamGroup], { stdio: 'ignore' });
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  remember(user: string): void {
    this.createdUsers.add(user);
  }
}

/** True while a process with this pid exists (and is not a zombie). */
export { pidAlive as alive };

/** Runs code in a Jupyter kernel over the kernel WebSocket and returns its text output. */
export async function executeInKernel(
  wsUrl: string,
  code: string,
  headers: Record<string, string>,
): Promise<{ text: string; roundTripMs: number }> {
  const ws = new WebSocket(wsUrl, { headers });
  await new Promise<void>((r, j) => {
    ws.once('open', () => r());
    ws.once('error', j);
    ws.once('unexpected-response', (_req, res) => j(new Error(`WebSocket refused: HTTP ${res.statusCode}`)));
  });
  const msgId = `m-${rand()}`;
  const started = performance.now();
  const text = await new Promise<string>((resolvePromise, reject) => {
    const timer = setTimeout(() => reject(new Error('no kernel reply')), 30_000);
    let output = '';
    ws.on('message', (data) => {
      const message = JSON.parse(String(data)) as {
        channel: string;
        msg_type: string;
        parent_header: { msg_id?: string };
        content: { data?: Record<string, string>; text?: string; execution_state?: string; ename?: string; evalue?: string };
      };
      if (message.parent_header.msg_id !== msgId) return;
      if (message.msg_type === 'execute_result') output += message.content.data?.['text/plain'] ?? '';
      if (message.msg_type === 'stream') output += message.content.text ?? '';
      if (message.msg_type === 'error') output += `${message.content.ename}: ${message.content.evalue}`;
      if (message.msg_type === 'status' && message.content.execution_state === 'idle') {
        clearTimeout(timer);
        resolvePromise(output);
      }
    });
    ws.send(
      JSON.stringify({
        header: { msg_id: msgId, username: 'test', session: `s-${rand()}`, msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
        parent_header: {},
        metadata: {},
        content: { code, silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
        buffers: [],
        channel: 'shell',
      }),
    );
  });
  const roundTripMs = performance.now() - started;
  ws.close();
  return { text, roundTripMs };
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (bounded), feeding `input` on stdin. */
export function run(file: string, args: readonly string[], options: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, { env: { ...process.env, ...options.env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${file} ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, options.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(options.input ?? '');
  });
}
