// One user's Jupyter server on this instance: a small state machine from `starting` to `exited`.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../lib/log.js';
import type { AgentSettings, AgentUser, ServerReport, StartServerParams, StartServerResult } from '../protocol/agent.js';
import { ensureAccount } from './account.js';
import { AgentError, IllegalServerTransitionError, JupyterMissingError, ServerStartError, ServerStartTimeoutError } from './errors.js';
import { findExecutable } from './host.js';
import { linkNotebooks, prepareLocal, prepareShare, sessionDirsEnv, userPaths, writeJupyterConfig, type UserPaths } from './layout.js';
import { OutputTail } from './output.js';
import type { TransitionTable } from '../lib/state.js';

/**
 * States of one user server.
 * - `starting`: account, folders and process being set up, waiting for Jupyter to answer.
 * - `running`: Jupyter answered `api/status`; the gateway may route to it.
 * - `stopping`: SIGTERM sent (or a start aborted); waiting for the process to go.
 * - `exited`: the process is gone; the server is forgotten right after.
 */
export type ServerState = 'starting' | 'running' | 'stopping' | 'exited';

const TRANSITIONS: TransitionTable<ServerState> = {
  starting: ['running', 'stopping', 'exited'],
  running: ['stopping', 'exited'],
  stopping: ['exited'],
  exited: [],
};

/**
 * The one rule for server state changes: returns `to` when allowed from `from`, otherwise throws
 * `IllegalServerTransitionError` naming both.
 *
 * @example
 * nextServerState('s1', 'starting', 'running'); // 'running'
 * nextServerState('s1', 'exited', 'running');   // throws
 */
export function nextServerState(sessionId: string, from: ServerState, to: ServerState): ServerState {
  if (!TRANSITIONS[from].includes(to)) throw new IllegalServerTransitionError(sessionId, from, to);
  return to;
}

/** How a server ended on its own, for `serverExited`. */
export interface ServerExit {
  readonly code: number | null;
  readonly signal: string | null;
  /** Last lines of output, secrets redacted. */
  readonly detail: string;
}

/** What a `UserServer` needs from the agent: settings, logger and where to report. */
export interface ServerContext {
  readonly settings: AgentSettings;
  readonly log: Logger;
  /** The agent is root: make the account and run the server as the user. */
  readonly asRoot: boolean;
  /** SIGTERM → SIGKILL delay, in milliseconds. */
  readonly stopGraceMs: number;
  /** Readiness poll interval, in milliseconds. */
  readonly readinessPollMs: number;
  readonly onProgress: (percent: number, message: string) => void;
  /** Called once when a running server exits without being asked to. */
  readonly onUnexpectedExit: (exit: ServerExit) => void;
}

const TAIL_LINES = 30;
const PORT_ATTEMPTS = 3;

/**
 * One user's Jupyter Notebook server. `start()` creates the account and folders, spawns Jupyter as the user
 * and resolves once it answers; `stop()` ends it (SIGTERM, then SIGKILL after the grace period).
 *
 * @example
 * const server = new UserServer(params, ctx);
 * const { url, pid } = await server.start();
 * await server.stop();
 */
export class UserServer {
  readonly sessionId: string;
  readonly user: AgentUser;
  readonly baseUrl: string;
  readonly startedAt = new Date().toISOString();
  private current: ServerState = 'starting';
  private child: ChildProcess | undefined;
  private url = '';
  private tail: OutputTail;
  private logFile: WriteStream | undefined;
  private startPromise: Promise<StartServerResult> | undefined;
  private stopPromise: Promise<void> | undefined;
  private childClosed: Promise<void> = Promise.resolve();
  private readonly exitedPromise: Promise<void>;
  private markExited!: () => void;
  private lastExit: ServerExit | undefined;
  private lastActivity: string | undefined;
  private readonly log: Logger;

  constructor(
    private readonly params: StartServerParams,
    private readonly ctx: ServerContext,
  ) {
    this.sessionId = params.sessionId;
    this.user = params.user;
    this.baseUrl = normalizeBaseUrl(params.baseUrl);
    this.log = ctx.log.child({ session: params.sessionId, user: params.user.name });
    this.tail = new OutputTail([params.token], TAIL_LINES);
    this.exitedPromise = new Promise((resolve) => (this.markExited = resolve));
  }

  get state(): ServerState {
    return this.current;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Resolves once the server's process is gone (or its start was abandoned before spawning). */
  get exited(): Promise<void> {
    return this.exitedPromise;
  }

  /**
   * What every process of this session sees besides its account's HOME/USER/LOGNAME/SHELL: the Jupyter server
   * and its terminals and kernels, and the user's SSH sessions on this instance alike (never the server's token).
   *
   * @example
   * server.shellEnv(); // { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', …, CUDA_VISIBLE_DEVICES: '1' }
   */
  shellEnv(): Record<string, string> {
    return {
      PATH: this.ctx.settings.jupyter.path,
      LANG: 'C.UTF-8',
      // ipykernel's debugger otherwise warns about frozen modules on every kernel start.
      PYDEVD_DISABLE_FILE_VALIDATION: '1',
      // What must stay off the share (SQLite files, sockets, caches) goes to the instance's disk.
      ...sessionDirsEnv(userPaths(this.ctx.settings, this.user.name)),
      // Only the GPUs the hub granted this session (none granted: none visible).
      ...(this.params.resources ? { CUDA_VISIBLE_DEVICES: this.params.resources.gpus.join(',') } : {}),
    };
  }

  /** The server as reported to the hub in `hello` and `heartbeat`; `undefined` once exited. */
  report(): ServerReport | undefined {
    if (this.current === 'exited') return undefined;
    const report: ServerReport = { sessionId: this.sessionId, user: this.user.name, state: this.current, url: this.url, startedAt: this.startedAt };
    if (this.child?.pid !== undefined) report.pid = this.child.pid;
    if (this.lastActivity !== undefined) report.lastActivity = this.lastActivity;
    if (this.params.resources !== undefined) report.resources = this.params.resources;
    return report;
  }

  /**
   * Asks the running server when it last did work and keeps the answer for `report()`: the latest
   * `last_activity` of its kernels and terminals, or now while a kernel is busy. Open connections alone do not
   * count (idle is "no work", not "no traffic"). Failures leave the previous value.
   */
  async refreshActivity(): Promise<void> {
    if (this.current !== 'running') return;
    const headers = { Authorization: `token ${this.params.token}` };
    const get = async (what: string): Promise<Array<{ last_activity?: string; execution_state?: string }>> => {
      try {
        const response = await fetch(`${this.url}${this.baseUrl}api/${what}`, { headers, signal: AbortSignal.timeout(2000) });
        return response.ok ? ((await response.json()) as Array<{ last_activity?: string; execution_state?: string }>) : [];
      } catch {
        return [];
      }
    };
    const [kernels, terminals] = await Promise.all([get('kernels'), get('terminals')]);
    let latest = Date.parse(this.lastActivity ?? this.startedAt);
    for (const item of [...kernels, ...terminals]) {
      const at = item.execution_state === 'busy' ? Date.now() : Date.parse(item.last_activity ?? '');
      if (Number.isFinite(at) && at > latest) latest = at;
    }
    this.lastActivity = new Date(latest).toISOString();
  }

  /** Starts the server once; later calls return the same promise. */
  start(): Promise<StartServerResult> {
    this.startPromise ??= this.runStart();
    return this.startPromise;
  }

  /** Stops the server; safe to call in any state and more than once. */
  stop(): Promise<void> {
    this.stopPromise ??= this.runStop();
    return this.stopPromise;
  }

  private transition(to: ServerState): void {
    const from = this.current;
    this.current = nextServerState(this.sessionId, from, to);
    this.log.info({ from, to }, 'server state');
    if (to === 'exited') {
      this.logFile?.end();
      this.markExited();
    }
  }

  /** Throws when a stop arrived while starting, so the start goes no further. */
  private checkNotAborted(): void {
    if (this.current !== 'starting') throw new ServerStartError(this.sessionId, null, null, 'the start was cancelled by a stop');
  }

  private async runStart(): Promise<StartServerResult> {
    const { settings } = this.ctx;
    try {
      const [command, ...commandArgs] = settings.jupyter.command;
      const executable = await findExecutable(command ?? '', settings.jupyter.path);
      if (executable === undefined) throw new JupyterMissingError(command ?? '', settings.jupyter.path);
      const paths = userPaths(settings, this.user.name);
      const layoutCtx = { log: this.log, asRoot: this.ctx.asRoot, teamGid: settings.team?.gid };

      this.ctx.onProgress(10, 'creating account');
      if (this.ctx.asRoot) await ensureAccount(this.user, paths.home, { log: this.log, team: settings.team });
      this.checkNotAborted();

      this.ctx.onProgress(30, 'preparing your home on the share');
      prepareShare(paths, settings.sharePath, this.user, layoutCtx);
      prepareLocal(paths, this.user, layoutCtx);
      linkNotebooks(paths, this.user, layoutCtx);
      writeJupyterConfig(paths, this.user, layoutCtx);
      this.openLogFile();
      this.checkNotAborted();

      this.ctx.onProgress(50, 'starting Jupyter');
      for (let attempt = 1; ; attempt++) {
        const port = await freePort(settings.address);
        this.checkNotAborted();
        this.spawnJupyter(executable, commandArgs, paths, port);
        this.ctx.onProgress(90, 'waiting for Jupyter');
        const ready = await this.waitReady();
        if (ready) break;
        // Another process took the port between our probe and Jupyter's bind: try a fresh one.
        if (attempt < PORT_ATTEMPTS && this.current === 'starting' && /already in use|Address already in use|EADDRINUSE/i.test(this.tail.text())) {
          this.log.warn({ port }, 'port taken before Jupyter bound it; retrying on another port');
          continue;
        }
        throw new ServerStartError(this.sessionId, this.lastExit?.code ?? null, this.lastExit?.signal ?? null, this.tail.text());
      }
      this.transition('running');
      return { url: this.url, pid: this.child?.pid ?? 0 };
    } catch (error) {
      await this.abandonStart();
      if (error instanceof AgentError) throw error;
      throw new ServerStartError(this.sessionId, null, null, (error as Error).message, { cause: error });
    }
  }

  /** After a failed start: make sure the process is gone and the state is `exited`. */
  private async abandonStart(): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      if (this.current === 'starting') this.transition('stopping');
      await this.killChild();
    }
    if (this.current !== 'exited') this.transition('exited');
  }

  private openLogFile(): void {
    const dir = path.join(this.ctx.settings.scratchDir, 'logs');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const name = `jupyter-${this.user.name}-${this.sessionId.replace(/[^A-Za-z0-9._-]/g, '_')}.log`;
    this.logFile = createWriteStream(path.join(dir, name), { flags: 'a', mode: 0o600 });
    this.logFile.on('error', (error) => this.log.warn({ err: error.message }, 'cannot write the server log'));
  }

  private spawnJupyter(executable: string, commandArgs: readonly string[], paths: UserPaths, port: number): void {
    const { settings } = this.ctx;
    const host = settings.address.includes(':') ? `[${settings.address}]` : settings.address;
    this.url = `http://${host}:${port}`;
    const args = [
      ...commandArgs,
      '--no-browser',
      `--ip=${settings.address}`,
      `--port=${port}`,
      `--NotebookApp.base_url=${this.baseUrl}`,
      `--notebook-dir=${paths.home}`,
      ...settings.jupyter.args,
    ];
    const env: NodeJS.ProcessEnv = {
      HOME: paths.home,
      USER: this.user.name,
      LOGNAME: this.user.name,
      SHELL: '/bin/bash',
      ...this.shellEnv(),
      // The secret goes to Jupyter only through its environment: never argv, never a log.
      JUPYTER_TOKEN: this.params.token,
    };
    const tail = new OutputTail([this.params.token], TAIL_LINES, (line) => {
      this.logFile?.write(`${line}\n`);
      this.log.debug({ line }, 'jupyter');
    });
    this.tail = tail;
    const child = spawn(executable, args, {
      cwd: paths.home,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      // Same process group as the agent: killing the instance's group kills its servers.
      detached: false,
      ...(this.ctx.asRoot ? { uid: this.user.uid, gid: this.user.gid } : {}),
    });
    this.child = child;
    this.log.info({ pid: child.pid, url: this.url }, 'jupyter spawned');
    child.stdout?.on('data', (chunk: Buffer) => tail.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => tail.push(chunk));
    this.childClosed = new Promise<void>((resolve) => {
      let done = false;
      const finish = (code: number | null, signal: string | null, error?: Error): void => {
        if (done) return;
        done = true;
        tail.end();
        if (error) tail.push(`${error.message}\n`);
        tail.end();
        this.lastExit = { code, signal, detail: tail.text() };
        this.log.info({ code, signal, pid: child.pid }, 'jupyter exited');
        resolve();
        // While starting, the start itself decides (fail or retry on another port).
        const previous = this.current;
        if (this.child !== child || previous === 'starting' || previous === 'exited') return;
        this.transition('exited');
        if (previous === 'running') this.ctx.onUnexpectedExit(this.lastExit);
      };
      child.once('error', (error) => finish(null, null, error));
      child.once('close', (code, signal) => finish(code, signal));
    });
  }

  /** Polls `api/status` until it answers 200 (true) or the process exits (false); throws on timeout. */
  private async waitReady(): Promise<boolean> {
    let closed = false;
    void this.childClosed.then(() => (closed = true));
    const deadline = Date.now() + this.ctx.settings.jupyter.startTimeoutMs;
    const statusUrl = `${this.url}${this.baseUrl}api/status`;
    while (!closed && this.current === 'starting') {
      if (Date.now() > deadline) {
        throw new ServerStartTimeoutError(this.sessionId, this.ctx.settings.jupyter.startTimeoutMs, this.tail.text());
      }
      try {
        const response = await fetch(statusUrl, {
          headers: { Authorization: `token ${this.params.token}` },
          signal: AbortSignal.timeout(Math.max(500, Math.min(2000, deadline - Date.now()))),
        });
        await response.body?.cancel();
        if (response.status === 200) return true;
      } catch {
        // Not listening yet.
      }
      await Promise.race([sleep(this.ctx.readinessPollMs), this.childClosed]);
    }
    // The output of an exit is complete once the child is closed: the caller reads the tail next.
    if (closed) await this.childClosed;
    return false;
  }

  private async runStop(): Promise<void> {
    if (this.current === 'exited') return;
    if (this.current !== 'stopping') this.transition('stopping');
    if (this.child) await this.killChild();
    else if (this.startPromise) await this.exitedPromise; // a start in its setup steps sees the stop and ends itself
    else this.transition('exited');
  }

  private async killChild(): Promise<void> {
    const child = this.child;
    if (!child) return;
    const gone = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve();
      else child.once('close', () => resolve());
    });
    const finishIfCurrent = (): void => {
      if (this.child === child && this.current !== 'exited') this.transition('exited');
    };
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    const inTime = await Promise.race([gone.then(() => true), sleep(this.ctx.stopGraceMs).then(() => false)]);
    if (!inTime) {
      this.log.warn({ pid: child.pid, graceMs: this.ctx.stopGraceMs }, 'server ignored SIGTERM; killing it');
      child.kill('SIGKILL');
      await gone;
    }
    finishIfCurrent();
  }
}

/** Jupyter wants `/prefix/`; accept `prefix`, `/prefix` too. */
function normalizeBaseUrl(baseUrl: string): string {
  let out = baseUrl.startsWith('/') ? baseUrl : `/${baseUrl}`;
  if (!out.endsWith('/')) out += '/';
  return out;
}

/** A port that is free on `address` right now (Jupyter is told not to move if it is taken meanwhile). */
async function freePort(address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, address, () => {
      const bound = server.address();
      const port = typeof bound === 'object' && bound ? bound.port : 0;
      server.close(() => resolve(port));
    });
  });
}
