// One user's Jupyter server on this instance: a small state machine from `starting` to `exited`.
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { urlHost } from '../lib/address.js';
import type { Logger } from '../lib/log.js';
import type { AgentSettings, AgentUser, ServerReport, ServerWork, StartServerParams, StartServerResult } from '../protocol/agent.js';
import { jupyterWork, type KernelModel, type TerminalModel } from './activity.js';
import { ensureAccount } from './account.js';
import { AgentError, IllegalServerTransitionError, JupyterMissingError, ServerStartError, ServerStartTimeoutError } from './errors.js';
import { findExecutable } from './host.js';
import { linkNotebooks, prepareLocal, prepareShare, sessionDirsEnv, userPaths, writeJupyterConfig, type UserPaths } from './layout.js';
import { OutputTail } from './output.js';
import { createSessionCgroup, type CgroupHost, type SessionCgroup } from './cgroup.js';
import { listenerOwnedBy } from './listener.js';
import { ForkServerLostError } from './forkserver/errors.js';
import { launch, type ForkSource, type LaunchedProcess } from './forkserver/launch.js';
import type { SpawnSpec } from './spawn-spec.js';
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
  /**
   * Picks the port Jupyter is told to use on `address`.
   * @default a port free right now (`freePort`)
   * @internal tests pass one that a squatter already holds, to prove the token never reaches it
   */
  readonly pickPort?: ((address: string, attempt: number) => Promise<number>) | undefined;
  /** Where sessions' cgroups go (as root, on a host with cgroup controllers); `undefined`: no per-session cgroup. */
  readonly cgroups: CgroupHost | undefined;
  /** The instance's cgroup folder name (`instanceCgroupName`). */
  readonly instanceCgroup: string;
  /** Most processes and threads a session may run at once when its profile sets none (its cgroup's pids limit); 0: no limit. */
  readonly sessionPidsMax: number;
  /** `phase` names a step whose time the hub records (`forked`, `exec`). */
  readonly onProgress: (percent: number, message: string, phase?: string) => void;
  /** The instance's fork server; absent when forking is off (every start execs). */
  readonly forks?: ForkSource | undefined;
  /** Called once when a running server exits without being asked to. */
  readonly onUnexpectedExit: (exit: ServerExit) => void;
  /**
   * The URL the hub and gateway know the server by, given the port it listens on.
   * @default its own `http://<address>:<port>` (behind the agent's TLS relay: the relay's URL for that port)
   */
  readonly publicUrl?: ((port: number) => string) | undefined;
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
  private child: LaunchedProcess | undefined;
  private url = '';
  /** The port Jupyter was told to listen on. */
  private port = 0;
  private tail: OutputTail;
  private logFile: WriteStream | undefined;
  private startPromise: Promise<StartServerResult> | undefined;
  private stopPromise: Promise<void> | undefined;
  private childClosed: Promise<void> = Promise.resolve();
  /** The fork server died before the current forked child was ready (it died with it). */
  private lostFork = false;
  private readonly exitedPromise: Promise<void>;
  private markExited!: () => void;
  private lastExit: ServerExit | undefined;
  private lastActivity: string | undefined;
  private sessionCgroup: SessionCgroup | undefined;
  /** Work seen at the last `refreshActivity()`. */
  private work: ServerWork | undefined;
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

  /**
   * The session's cgroup (as root, where the host has cgroups): every process of the session joins it, its SSH
   * sessions too; the agent ends and removes it when the user's last session here ends.
   */
  get cgroup(): SessionCgroup | undefined {
    return this.sessionCgroup;
  }

  /**
   * How to start `file` as a process of this session: the user's IDs and groups (as root), umask 077, the session's
   * cgroup, `env` as the whole environment, in `cwd`. The one place both Jupyter and SSH get it from.
   *
   * @example
   * spawnAsUser(server.spawnSpec('/bin/bash', ['-l'], env, home));
   */
  spawnSpec(file: string, args: readonly string[], env: Readonly<Record<string, string>>, cwd: string): SpawnSpec {
    const teamGid = this.ctx.settings.team?.gid;
    const ids = this.ctx.asRoot
      ? { uid: this.user.uid, gid: this.user.gid, groups: [...new Set([this.user.gid, ...(teamGid !== undefined ? [teamGid] : [])])] }
      : {};
    return { file, args, env, cwd, ...ids, umask: 0o077, cgroupProcs: this.sessionCgroup?.procsFiles ?? [] };
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
    const report: ServerReport = { sessionId: this.sessionId, user: this.user.name, state: this.current, url: this.publicUrl(), startedAt: this.startedAt };
    if (this.child?.pid !== undefined) report.pid = this.child.pid;
    if (this.lastActivity !== undefined) report.lastActivity = this.lastActivity;
    if (this.params.resources !== undefined) report.resources = this.params.resources;
    if (this.work !== undefined) report.work = this.work;
    return report;
  }

  /**
   * Asks the running server what work it does (kernels executing, terminals with a foreground job, keystrokes)
   * and keeps the answer for `report()`. Open connections and polling do not count (idle is "no work", not "no
   * traffic"). Failures leave the previous value.
   */
  async refreshActivity(): Promise<void> {
    // The token goes only to the server's own listener (it may have died and its port been taken since).
    if (this.current !== 'running' || !this.listenerIsOurs()) return;
    const headers = { Authorization: `token ${this.params.token}` };
    const get = async <T>(what: string): Promise<T[] | undefined> => {
      try {
        const response = await fetch(`${this.url}${this.baseUrl}api/${what}`, { headers, signal: AbortSignal.timeout(2000) });
        return response.ok ? ((await response.json()) as T[]) : undefined;
      } catch {
        return undefined;
      }
    };
    const [kernels, terminals] = await Promise.all([get<KernelModel>('kernels'), get<TerminalModel>('terminals')]);
    if (kernels === undefined || terminals === undefined) return;
    this.work = jupyterWork(kernels, terminals, Date.now());
    if (this.work.lastWork !== undefined) this.lastActivity = this.work.lastWork;
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
      if (this.ctx.asRoot && this.ctx.cgroups) {
        const resources = this.params.resources;
        this.sessionCgroup = createSessionCgroup(this.ctx.cgroups, this.ctx.instanceCgroup, this.sessionId, {
          memoryBytes: resources?.memoryBytes ?? 0,
          cpu: resources?.cpu ?? 0,
          pids: resources?.pids ?? this.ctx.sessionPidsMax,
        });
      }

      this.ctx.onProgress(50, 'starting Jupyter');
      let forceExec: string | undefined;
      for (let attempt = 1; ; attempt++) {
        const port = await (this.ctx.pickPort ?? freePort)(settings.address, attempt);
        this.checkNotAborted();
        const child = await this.spawnJupyter(executable, commandArgs, paths, port, forceExec);
        if (child.how === 'fork') this.ctx.onProgress(70, 'forked Jupyter, waiting for it', 'forked');
        else this.ctx.onProgress(70, `started Jupyter (exec${child.execReason ? `: ${child.execReason}` : ''}), waiting for it`, 'exec');
        const ready = await this.waitReady();
        if (ready) break;
        // The fork server died before the forked server was ready (it died with it): this start execs instead.
        if (this.lostFork && this.current === 'starting' && forceExec === undefined) {
          forceExec = `the fork server went away during this start`;
          this.log.warn({ port }, 'fork server lost during the start; starting Jupyter by exec');
          continue;
        }
        // Another process took the port between our probe and Jupyter's bind: try a fresh one.
        if (attempt < PORT_ATTEMPTS && this.current === 'starting' && /already in use|Address already in use|EADDRINUSE/i.test(this.tail.text())) {
          this.log.warn({ port }, 'port taken before Jupyter bound it; retrying on another port');
          continue;
        }
        throw new ServerStartError(this.sessionId, this.lastExit?.code ?? null, this.lastExit?.signal ?? null, this.tail.text());
      }
      this.transition('running');
      return { url: this.publicUrl(), pid: this.child?.pid ?? 0 };
    } catch (error) {
      await this.abandonStart();
      if (error instanceof AgentError) throw error;
      throw new ServerStartError(this.sessionId, null, null, (error as Error).message, { cause: error });
    }
  }

  /** After a failed start: make sure the process is gone and the state is `exited`. */
  private async abandonStart(): Promise<void> {
    if (this.child?.running()) {
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

  private async spawnJupyter(
    executable: string,
    commandArgs: readonly string[],
    paths: UserPaths,
    port: number,
    forceExec: string | undefined,
  ): Promise<LaunchedProcess> {
    const { settings } = this.ctx;
    this.url = `http://${urlHost(settings.address)}:${port}`;
    const args = [
      ...commandArgs,
      '--no-browser',
      `--ip=${settings.address}`,
      `--port=${port}`,
      `--NotebookApp.base_url=${this.baseUrl}`,
      `--notebook-dir=${paths.home}`,
      ...settings.jupyter.args,
    ];
    const env: Record<string, string> = {
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
    // Same process group as the agent either way: killing the instance's group kills its servers.
    const child = await launch(this.spawnSpec(executable, args, env as Record<string, string>, paths.home), this.ctx.settings.jupyter.forkServer === false ? undefined : this.ctx.forks, forceExec);
    this.port = port;
    this.child = child;
    this.lostFork = false;
    this.log.info({ pid: child.pid, url: this.url, how: child.how, execReason: child.execReason }, 'jupyter spawned');
    for (const stream of child.outputs) stream.on('data', (chunk: Buffer) => tail.push(chunk));
    child.ready?.catch((error: unknown) => {
      if (error instanceof ForkServerLostError) this.lostFork = true;
    });
    this.childClosed = child.closed.then(({ code, signal, error }) => {
      tail.end();
      if (error) tail.push(`${error.message}\n`);
      tail.end();
      this.lastExit = { code, signal, detail: tail.text() };
      this.log.info({ code, signal, pid: child.pid }, 'jupyter exited');
      // While starting, the start itself decides (fail, exec instead, or retry on another port).
      const previous = this.current;
      if (this.child !== child || previous === 'starting' || previous === 'exited') return;
      this.transition('exited');
      if (previous === 'running') this.ctx.onUnexpectedExit(this.lastExit);
    });
    return child;
  }

  /**
   * Waits until the server answers: a forked one says so itself (no polling, no token sent); an exec'd one is
   * polled on `api/status` until it answers 200, and the token goes out only once the port's listener is a socket
   * held by the server itself (or, as root, by a process of its session): whatever else bound the port first never
   * sees it. True when ready, false when the process exited (or a forked one could not start); throws on timeout.
   */
  private async waitReady(): Promise<boolean> {
    let closed = false;
    void this.childClosed.then(() => (closed = true));
    const deadline = Date.now() + this.ctx.settings.jupyter.startTimeoutMs;
    const pushed = this.child?.ready;
    if (pushed) {
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([
        pushed.then((said) => (said.execReason === undefined ? ('ready' as const) : ('exec' as const)), () => 'failed' as const),
        this.childClosed.then(() => 'closed' as const),
        new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), this.ctx.settings.jupyter.startTimeoutMs))),
      ]);
      clearTimeout(timer);
      if (outcome === 'timeout') throw new ServerStartTimeoutError(this.sessionId, this.ctx.settings.jupyter.startTimeoutMs, this.tail.text());
      if (outcome === 'ready' && this.current === 'starting') return true;
      if (outcome !== 'exec') {
        if (outcome === 'failed' && this.child?.running()) await this.killChild();
        await this.childClosed;
        return false;
      }
      // The child exec'd the command itself (it says why in its output): polled like any exec'd server.
    }
    const statusUrl = `${this.url}${this.baseUrl}api/status`;
    while (!closed && this.current === 'starting') {
      if (Date.now() > deadline) {
        throw new ServerStartTimeoutError(this.sessionId, this.ctx.settings.jupyter.startTimeoutMs, this.tail.text());
      }
      if (!this.listenerIsOurs()) {
        await Promise.race([sleep(this.ctx.readinessPollMs), this.childClosed]);
        continue;
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

  /**
   * The server's token when it runs and listens on `port` itself (what the agent's relay checks a preamble against);
   * `undefined` otherwise (another port, not running, or its port held by another process).
   */
  tokenForPort(port: number): string | undefined {
    return this.current === 'running' && port === this.port && this.listenerIsOurs() ? this.params.token : undefined;
  }

  private publicUrl(): string {
    if (!this.ctx.publicUrl) return this.url;
    return this.url !== '' && this.port !== 0 ? this.ctx.publicUrl(this.port) : '';
  }

  /** The server's port is listened on by the server's own process (or another of its session's). */
  private listenerIsOurs(): boolean {
    const pid = this.child?.pid;
    if (pid === undefined) return false;
    const pids = [pid, ...(this.sessionCgroup?.pids() ?? []).filter((p) => p !== pid)];
    return listenerOwnedBy(pids, this.ctx.settings.address, this.port);
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
    const finishIfCurrent = (): void => {
      if (this.child === child && this.current !== 'exited') this.transition('exited');
    };
    const closed = this.childClosed;
    if (child.running()) child.kill('SIGTERM');
    const inTime = await Promise.race([closed.then(() => true), sleep(this.ctx.stopGraceMs).then(() => false)]);
    if (!inTime) {
      this.log.warn({ pid: child.pid, graceMs: this.ctx.stopGraceMs }, 'server ignored SIGTERM; killing it');
      child.kill('SIGKILL');
      await closed;
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
