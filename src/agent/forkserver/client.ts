// The agent's side of the instance's fork server (dspool_forkserver.py): starts it, restarts it when it dies,
// and asks it to fork a user's process from a `SpawnSpec`.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, chmodSync, readFileSync, rmSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Logger } from '../../lib/log.js';
import { pidAlive } from '../../lib/process.js';
import type { TransitionTable } from '../../lib/state.js';
import type { SpawnSpec } from '../spawn-spec.js';
import { ForkRefusedError, ForkServerLostError, ForkServerStartError, ForkServerUnavailableError } from './errors.js';

/**
 * States of the fork server.
 * - `idle`: created, `start()` not called.
 * - `starting`: the Python process is importing; spawns are refused (the caller execs).
 * - `ready`: connected; spawns fork.
 * - `restarting`: it died; a new one starts after `restartDelayMs`; spawns are refused.
 * - `closed`: `close()` was called; it is stopped and stays so.
 */
export type ForkServerState = 'idle' | 'starting' | 'ready' | 'restarting' | 'closed';

const TRANSITIONS: TransitionTable<ForkServerState> = {
  idle: ['starting', 'closed'],
  starting: ['ready', 'restarting', 'closed'],
  ready: ['restarting', 'closed'],
  restarting: ['starting', 'closed'],
  closed: [],
};

/** Options of a `ForkServer`. */
export interface ForkServerOptions {
  /** A folder only root can enter (made 0700 if missing); its socket lives there. */
  readonly socketDir: string;
  readonly log: Logger;
  /**
   * The Python that imports the notebook server and ipykernel and forks them.
   * @default '/usr/bin/python3'
   */
  readonly python?: string;
  /**
   * PATH of the fork server itself (its children get the spec's environment, never this one).
   * @default '/usr/bin:/bin'
   */
  readonly path?: string;
  /**
   * How long the Python process may take to import and listen, in milliseconds.
   * @default 60000
   */
  readonly startTimeoutMs?: number;
  /**
   * Pause before restarting a fork server that died, in milliseconds.
   * @default 500
   */
  readonly restartDelayMs?: number;
  /**
   * How long a spawn request may wait for the fork, in milliseconds.
   * @default 10000
   */
  readonly spawnTimeoutMs?: number;
  /**
   * How often a forked process whose fork server died is checked for its exit, in milliseconds.
   * @default 500
   */
  readonly orphanPollMs?: number;
}

type ResolvedForkServerOptions = Required<ForkServerOptions>;

/**
 * Fills in every default of `ForkServerOptions`; the only place they live.
 *
 * @example
 * forkServerDefaults({ socketDir: '/scratch/forkserver', log }).python; // '/usr/bin/python3'
 */
export function forkServerDefaults(options: ForkServerOptions): ResolvedForkServerOptions {
  return {
    socketDir: options.socketDir,
    log: options.log,
    python: options.python ?? '/usr/bin/python3',
    path: options.path ?? '/usr/bin:/bin',
    startTimeoutMs: options.startTimeoutMs ?? 60_000,
    restartDelayMs: options.restartDelayMs ?? 500,
    spawnTimeoutMs: options.spawnTimeoutMs ?? 10_000,
    orphanPollMs: options.orphanPollMs ?? 500,
  };
}

/** How a forked process ended. */
export interface ForkedExit {
  readonly code: number | null;
  readonly signal: string | null;
}

/** What the child said once its server listens, or that it exec'd the command instead. */
export interface ForkedReady {
  /** The port the server bound (0 when it exec'd). */
  readonly port: number;
  /**
   * Set when the child exec'd the command after applying the spec (not the notebook 6 entry point, or the user's own
   * site-packages replace a pre-imported module): no readiness will be pushed, the caller polls as for any exec.
   */
  readonly execReason?: string;
}

/**
 * A process forked by the fork server. Not the agent's child: its exit is reported by the fork server (or, once
 * that is gone, found by polling its PID).
 */
export interface ForkedProcess {
  readonly pid: number;
  /** The child's stdout and stderr together, as a stream (it ends when the last holder closes it). */
  readonly output: Socket;
  /**
   * Resolves when the child says its server listens (pushed by the child, no polling). Rejects with
   * `ForkRefusedError` when the child could not apply its spec, or `ForkServerLostError` when the fork server died
   * first; never settles for a program that does not report readiness.
   */
  readonly ready: Promise<ForkedReady>;
  /** Resolves once the process is gone. */
  readonly exited: Promise<ForkedExit>;
  /** Sends a signal; a process already gone is ignored. */
  kill(signal: NodeJS.Signals): void;
}

/** Options of one `ForkServer.spawn`. */
export interface SpawnOptions {
  /**
   * Python code the forked child runs (after applying the whole spec) instead of the notebook server: for tests
   * and diagnostics. It may call `send_status('ready', port=…)`.
   * @default undefined (the notebook server, or an exec of `spec.file` when that is not notebook 6)
   */
  readonly pythonCode?: string;
}

interface Pending {
  readonly id: string;
  readonly spawned: (pid: number) => void;
  readonly refused: (error: Error) => void;
}

interface Tracked {
  readonly id: string;
  readonly pid: number;
  readyState: 'waiting' | 'ready' | 'done';
  readonly onReady: (ready: ForkedReady) => void;
  readonly onNotReady: (error: Error) => void;
  readonly onExit: (exit: ForkedExit) => void;
}

/**
 * Where dspool_forkserver.py is: beside this file once built (the build copies it), else in `src/`.
 *
 * @example
 * forkServerScript(); // '/opt/dspool/dist/agent/forkserver/dspool_forkserver.py'
 */
export function forkServerScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.join(here, 'dspool_forkserver.py'), path.join(here, '..', '..', '..', 'src', 'agent', 'forkserver', 'dspool_forkserver.py')];
  return candidates.find((file) => existsSync(file)) ?? (candidates[0] as string);
}

/**
 * A root-only folder for the fork server's socket: under the instance's short runtime dir when the provider gives
 * one (a Unix socket path must fit in ~107 bytes; `.forkserver` cannot clash with a user name), else its scratch dir.
 *
 * @example
 * forkServerSocketDir({ scratchDir: '/s/i-1', runtimeDir: '/run/dspool/i-1' }); // '/run/dspool/i-1/.forkserver'
 */
export function forkServerSocketDir(settings: { readonly scratchDir: string; readonly runtimeDir?: string | undefined }): string {
  const dir = path.join(settings.runtimeDir ?? settings.scratchDir, '.forkserver');
  return Buffer.byteLength(path.join(dir, 'forkserver.sock')) < 100 ? dir : path.join(os.tmpdir(), `dspool-forkserver-${process.pid}`);
}

let spawnCounter = 0;

/**
 * The instance's fork server: one pre-imported Python process that forks users' Jupyter servers. `start()`
 * resolves once it listens; a fork server that dies is restarted; `spawn()` refuses (so the caller execs) while
 * it is not `ready`.
 *
 * @example
 * const forks = new ForkServer({ socketDir: '/scratch/forkserver', log });
 * await forks.start();
 * const child = await forks.spawn(spec);
 * await child.ready;          // { port: 41234 }
 * child.kill('SIGTERM');
 * await forks.close();
 */
export class ForkServer {
  private current: ForkServerState = 'idle';
  private readonly options: ResolvedForkServerOptions;
  private process: ChildProcess | undefined;
  private control: Socket | undefined;
  private readonly pending = new Map<string, Pending>();
  private readonly tracked = new Map<string, Tracked>();
  private readonly orphans = new Set<Tracked>();
  private orphanTimer: NodeJS.Timeout | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private startPromise: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  /** Why the last spawn could not fork, for the operator. */
  lastFailure: string | undefined;

  constructor(options: ForkServerOptions) {
    this.options = forkServerDefaults(options);
  }

  get state(): ForkServerState {
    return this.current;
  }

  /** The Python process's PID while it runs. */
  get pid(): number | undefined {
    return this.process?.pid;
  }

  private get socketPath(): string {
    return path.join(this.options.socketDir, 'forkserver.sock');
  }

  private transition(to: ForkServerState): void {
    const from = this.current;
    if (!TRANSITIONS[from].includes(to)) throw new Error(`fork server: illegal transition ${from} → ${to}`);
    this.current = to;
    this.options.log.info({ from, to, pid: this.process?.pid }, 'fork server state');
  }

  /** Starts the Python process; resolves once it is ready (later calls return the same start). */
  start(): Promise<void> {
    if (this.current === 'closed') return Promise.reject(new ForkServerUnavailableError('closed'));
    this.startPromise ??= this.runStart().finally(() => (this.startPromise = undefined));
    return this.startPromise;
  }

  private async runStart(): Promise<void> {
    const { log } = this.options;
    this.transition('starting');
    // Its parent may be the instance's runtime dir, which users traverse to reach their own folders in it.
    mkdirSync(path.dirname(this.options.socketDir), { recursive: true, mode: 0o711 });
    mkdirSync(this.options.socketDir, { recursive: true, mode: 0o700 });
    chmodSync(this.options.socketDir, 0o700);
    const script = forkServerScript();
    const bootstrap =
      `import sys; sys.path.insert(0, ${JSON.stringify(path.dirname(script))}); ` +
      'import dspool_forkserver as m; sys.exit(m.main(sys.argv[1:]))';
    // Room for each child to write its own argv and environment over the originals (see retitle()).
    const padding = ' '.repeat(4096);
    const child = spawn(this.options.python, ['-I', '-B', '-c', bootstrap, this.socketPath, padding], {
      // Same process group as the agent: deleting the instance kills it with everything it forked.
      detached: false,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        PATH: this.options.path,
        LANG: 'C.UTF-8',
        HOME: this.options.socketDir,
        PYDEVD_DISABLE_FILE_VALIDATION: '1',
        DSPOOL_FORKSERVER_ROOM: '.'.repeat(16_384),
      },
    });
    this.process = child;
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000);
      for (const line of chunk.toString().split('\n')) if (line.trim()) log.warn({ line }, 'fork server');
    });
    child.once('exit', (code, signal) => this.onProcessExit(child, code, signal));
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new ForkServerStartError(`no answer in ${this.options.startTimeoutMs} ms: ${stderr}`)), this.options.startTimeoutMs);
        child.stdout?.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          if (out.includes('\n')) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', (code, signal) => {
          clearTimeout(timer);
          reject(new ForkServerStartError(`exited (code ${code}, signal ${signal}): ${stderr}`));
        });
      });
      this.control = await this.openControl();
      if (this.current !== 'starting') throw new ForkServerUnavailableError(this.current);
      this.transition('ready');
      log.info({ pid: child.pid }, 'fork server ready');
    } catch (error) {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      throw error;
    }
  }

  private openControl(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const socket = connect(this.socketPath);
      let buffer = '';
      let greeted = false;
      socket.once('error', (error) => (greeted ? undefined : reject(new ForkServerStartError(error.message, { cause: error }))));
      socket.on('connect', () => socket.write(`${JSON.stringify({ op: 'control' })}\n`));
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString();
        let newline: number;
        while ((newline = buffer.indexOf('\n')) >= 0) {
          const line = buffer.slice(0, newline);
          buffer = buffer.slice(newline + 1);
          let event: Record<string, unknown>;
          try {
            event = JSON.parse(line) as Record<string, unknown>;
          } catch {
            continue;
          }
          if (event.event === 'hello' && !greeted) {
            greeted = true;
            resolve(socket);
          } else this.onEvent(event);
        }
      });
      socket.on('close', () => {
        if (!greeted) reject(new ForkServerStartError('the control connection closed before hello'));
        else if (this.control === socket) this.onLost('its control connection closed');
      });
    });
  }

  private onEvent(event: Record<string, unknown>): void {
    const id = String(event.id ?? '');
    const pid = typeof event.pid === 'number' ? event.pid : undefined;
    switch (event.event) {
      case 'spawned': {
        const pending = this.pending.get(id);
        this.pending.delete(id);
        if (pending && pid !== undefined) pending.spawned(pid);
        return;
      }
      case 'ready': {
        const tracked = this.tracked.get(id);
        if (tracked && tracked.readyState === 'waiting') {
          tracked.readyState = 'ready';
          tracked.onReady({ port: Number(event.port ?? 0) });
        }
        return;
      }
      case 'exec': {
        const tracked = this.tracked.get(id);
        if (tracked && tracked.readyState === 'waiting') {
          tracked.readyState = 'ready';
          tracked.onReady({ port: 0, execReason: String(event.reason ?? '') });
        }
        return;
      }
      case 'failed': {
        const error = new ForkRefusedError(id, String(event.message ?? ''));
        const pending = this.pending.get(id);
        if (pending) {
          this.pending.delete(id);
          pending.refused(error);
        }
        const tracked = this.tracked.get(id);
        if (tracked && tracked.readyState === 'waiting') {
          tracked.readyState = 'done';
          tracked.onNotReady(error);
        }
        return;
      }
      case 'exit': {
        const tracked = this.tracked.get(id);
        if (!tracked) return;
        this.tracked.delete(id);
        if (tracked.readyState === 'waiting') {
          tracked.readyState = 'done';
          tracked.onNotReady(new ForkRefusedError(id, `exited before it was ready (code ${String(event.code)}, signal ${String(event.signal)})`));
        }
        tracked.onExit({ code: typeof event.code === 'number' ? event.code : null, signal: typeof event.signal === 'string' ? event.signal : null });
        return;
      }
      default:
    }
  }

  /**
   * Forks a process from `spec` (the fork server applies all of it). Rejects with `ForkServerUnavailableError`
   * unless the fork server is `ready`, `ForkServerLostError` when it dies meanwhile, `ForkRefusedError` when it
   * refuses the spec.
   *
   * @example
   * const child = await forks.spawn(spec);
   * child.output.on('data', (chunk) => tail.push(chunk));
   */
  async spawn(spec: SpawnSpec, options: SpawnOptions = {}): Promise<ForkedProcess> {
    if (this.current !== 'ready') throw new ForkServerUnavailableError(this.current);
    const id = `f${process.pid}-${++spawnCounter}`;
    const output = connect(this.socketPath);
    output.on('error', () => {}); // a fork server gone shows as ForkServerLostError below
    const request = { op: 'spawn', id, spec, ...(options.pythonCode === undefined ? {} : { code: options.pythonCode }) };
    output.write(`${JSON.stringify(request)}\n`);
    let onReady!: (ready: ForkedReady) => void;
    let onNotReady!: (error: Error) => void;
    let onExit!: (exit: ForkedExit) => void;
    const ready = new Promise<ForkedReady>((resolve, reject) => ((onReady = resolve), (onNotReady = reject)));
    ready.catch(() => {}); // the caller may never ask
    const exited = new Promise<ForkedExit>((resolve) => (onExit = resolve));
    let tracked: Tracked;
    try {
      tracked = await new Promise<Tracked>((resolve, reject) => {
        const timer = setTimeout(() => {
          this.pending.delete(id);
          reject(new ForkServerLostError(id, { cause: new Error(`no fork in ${this.options.spawnTimeoutMs} ms`) }));
        }, this.options.spawnTimeoutMs);
        this.pending.set(id, {
          id,
          // Tracked at once (not after this await): its ready or exit event may follow in the same chunk.
          spawned: (pid) => {
            clearTimeout(timer);
            const entry: Tracked = { id, pid, readyState: 'waiting', onReady, onNotReady, onExit };
            this.tracked.set(id, entry);
            resolve(entry);
          },
          refused: (error) => (clearTimeout(timer), reject(error)),
        });
      });
    } catch (error) {
      output.destroy();
      this.lastFailure = (error as Error).message;
      throw error;
    }
    const pid = tracked.pid;
    if (this.current !== 'ready') this.orphan(tracked);
    return {
      pid,
      output,
      ready,
      exited,
      kill: (signal) => {
        try {
          process.kill(pid, signal);
        } catch {
          // already gone
        }
      },
    };
  }

  /** The fork server's resident memory in bytes (VmRSS), or undefined when it is not running. */
  rssBytes(): number | undefined {
    const pid = this.process?.pid;
    if (pid === undefined) return undefined;
    try {
      const kb = /^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1];
      return kb === undefined ? undefined : Number(kb) * 1024;
    } catch {
      return undefined;
    }
  }

  private onProcessExit(child: ChildProcess, code: number | null, signal: string | null): void {
    if (this.process !== child) return;
    this.options.log.warn({ pid: child.pid, code, signal }, 'fork server exited');
    this.onLost(`exited (code ${code}, signal ${signal})`);
  }

  /** The fork server is gone: fail what is in flight, watch its children by PID, restart it. */
  private onLost(why: string): void {
    if (this.current === 'closed' || this.current === 'restarting') return;
    this.lastFailure = `the fork server ${why}`;
    this.control?.destroy();
    this.control = undefined;
    if (this.process && this.process.exitCode === null && this.process.signalCode === null) this.process.kill('SIGKILL');
    for (const pending of this.pending.values()) pending.refused(new ForkServerLostError(pending.id));
    this.pending.clear();
    for (const tracked of this.tracked.values()) this.orphan(tracked);
    this.tracked.clear();
    this.transition('restarting');
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (this.current !== 'restarting') return;
      this.start().catch((error: Error) => {
        this.options.log.error({ err: error.message }, 'fork server restart failed; starts exec until it is back');
        this.onLost(`did not restart: ${error.message}`);
      });
    }, this.options.restartDelayMs);
  }

  /** A child whose fork server is gone: not ready yet means it dies with it; its exit is found by polling. */
  private orphan(tracked: Tracked): void {
    if (tracked.readyState === 'waiting') {
      tracked.readyState = 'done';
      tracked.onNotReady(new ForkServerLostError(tracked.id));
    }
    this.orphans.add(tracked);
    this.orphanTimer ??= setInterval(() => {
      for (const orphan of this.orphans) {
        if (pidAlive(orphan.pid)) continue;
        this.orphans.delete(orphan);
        orphan.onExit({ code: null, signal: null });
      }
      if (this.orphans.size === 0) {
        clearInterval(this.orphanTimer);
        this.orphanTimer = undefined;
      }
    }, this.options.orphanPollMs);
    this.orphanTimer.unref();
  }

  /** Stops the fork server (its forked servers are the caller's to stop). Safe to call twice. */
  close(): Promise<void> {
    this.closePromise ??= this.runClose();
    return this.closePromise;
  }

  private async runClose(): Promise<void> {
    if (this.current !== 'closed') this.transition('closed');
    if (this.restartTimer) clearTimeout(this.restartTimer);
    for (const pending of this.pending.values()) pending.refused(new ForkServerUnavailableError('closed'));
    this.pending.clear();
    this.control?.destroy();
    const child = this.process;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(timer);
    }
    for (const tracked of this.tracked.values()) this.orphan(tracked);
    this.tracked.clear();
    rmSync(this.socketPath, { force: true });
  }
}
