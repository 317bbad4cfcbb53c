// Starting one user's server from a SpawnSpec: forked from the instance's fork server when it is ready, exec'd
// (spawnAsUser) otherwise, with the reason recorded. Either way the caller gets the same handle.
import type { Readable } from 'node:stream';
import { spawnAsUser } from '../spawn.js';
import type { SpawnSpec } from '../spawn-spec.js';
import type { ForkedProcess, ForkedReady, SpawnOptions } from './client.js';

/** What `launch` needs from the fork server (a narrow view of `ForkServer`). */
export interface ForkSource {
  readonly state: string;
  spawn(spec: SpawnSpec, options?: SpawnOptions): Promise<ForkedProcess>;
  /** While `state` is `starting`: resolves once it is ready, rejects when that start failed. */
  start?(): Promise<void>;
}

/**
 * How long a start waits for a fork server that is still importing (the first seconds of a new instance, e.g. one
 * woken from zero for this very user) before it execs instead. Waiting is the faster way: an exec imports the
 * same modules again while the fork server's import still runs, two imports fighting for the same cores.
 */
export const STARTING_FORK_SERVER_WAIT_MS = 8000;

/** How a launched process ended; `error` when it could not be started at all. */
export interface LaunchExit {
  readonly code: number | null;
  readonly signal: string | null;
  readonly error?: Error;
}

/** One launched server, forked or exec'd. */
export interface LaunchedProcess {
  readonly pid: number | undefined;
  /** `fork`: from the fork server; `exec`: a plain exec of `spec.file`. */
  readonly how: 'fork' | 'exec';
  /** Why it was exec'd when a fork server was configured (absent when forked, or when forking is off). */
  readonly execReason: string | undefined;
  /** Its output streams (stdout and stderr; one socket for both when forked). */
  readonly outputs: readonly Readable[];
  /**
   * Forked only: resolves when the child says it listens (no polling needed); rejects when the start failed or
   * the fork server died first (then the caller may exec instead).
   */
  readonly ready: Promise<ForkedReady> | undefined;
  /** Resolves once the process is gone and its output is complete. */
  readonly closed: Promise<LaunchExit>;
  /** Still running. */
  running(): boolean;
  kill(signal: NodeJS.Signals): void;
}

/**
 * Starts `spec`: forked when `forks` is given and ready, or becomes ready within `STARTING_FORK_SERVER_WAIT_MS`
 * while starting (and `forceExec` is not set), else exec'd. A fork that fails before there is a process (fork
 * server gone, refused) is exec'd instead, with the reason in `execReason`.
 *
 * @example
 * const server = await launch(spec, forks);
 * server.outputs.forEach((s) => s.on('data', (chunk) => tail.push(chunk)));
 * if (server.ready) await server.ready; // pushed by the child
 */
export async function launch(spec: SpawnSpec, forks: ForkSource | undefined, forceExec?: string): Promise<LaunchedProcess> {
  let execReason: string | undefined = forceExec;
  if (forks && forceExec === undefined) {
    if (forks.state === 'starting' && forks.start) await readyWithin(forks.start(), STARTING_FORK_SERVER_WAIT_MS);
    if (forks.state !== 'ready') execReason = `the fork server is ${forks.state}`;
    else {
      try {
        return fromFork(await forks.spawn(spec));
      } catch (error) {
        execReason = (error as Error).message;
      }
    }
  }
  return fromExec(spec, execReason);
}

/** Waits for `started` at most `ms`; its failure is not this caller's (the fork server's state says what happened). */
async function readyWithin(started: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([started.catch(() => undefined), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}

function fromFork(child: ForkedProcess): LaunchedProcess {
  let gone = false;
  const closed = (async (): Promise<LaunchExit> => {
    const exit = await child.exited;
    gone = true;
    // Its output socket ends when the last holder closes it (kernels may hold it a moment longer).
    if (!child.output.readableEnded && !child.output.destroyed) {
      await Promise.race([new Promise((resolve) => child.output.once('close', resolve)), new Promise((resolve) => setTimeout(resolve, 500))]);
    }
    return exit;
  })();
  return {
    pid: child.pid,
    how: 'fork',
    execReason: undefined,
    outputs: [child.output],
    ready: child.ready,
    closed,
    running: () => !gone,
    kill: (signal) => child.kill(signal),
  };
}

function fromExec(spec: SpawnSpec, execReason: string | undefined): LaunchedProcess {
  const child = spawnAsUser(spec, { stdio: ['ignore', 'pipe', 'pipe'] });
  const closed = new Promise<LaunchExit>((resolve) => {
    child.once('error', (error) => resolve({ code: null, signal: null, error }));
    child.once('close', (code, signal) => resolve({ code, signal }));
  });
  return {
    pid: child.pid,
    how: 'exec',
    execReason,
    outputs: [child.stdout, child.stderr].filter((s): s is NonNullable<typeof s> => s !== null),
    ready: undefined,
    closed,
    running: () => child.exitCode === null && child.signalCode === null,
    kill: (signal) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
  };
}
