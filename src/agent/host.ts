// What the agent reports about its machine: capacity, load, whether it can take sessions.
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AgentSettings, Capacity, Load } from '../protocol/agent.js';

/** True when the agent runs as root, so servers run as each user's own account. */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** The machine's size as reported in `hello`. GPUs are not detected yet. */
export function capacity(): Capacity {
  return { cpus: os.cpus().length, memoryBytes: os.totalmem(), gpus: 0 };
}

/** The machine's load as reported in every `heartbeat`. */
export function load(): Load {
  const cores = Math.max(1, os.cpus().length);
  const total = os.totalmem();
  return {
    cpu: Math.max(0, (os.loadavg()[0] ?? 0) / cores),
    memoryUsedBytes: Math.max(0, total - os.freemem()),
    memoryTotalBytes: total,
  };
}

/**
 * Resolves a command to an executable file: absolute or relative paths as given, bare names through `searchPath`.
 * Returns `undefined` when nothing executable is found.
 *
 * @example
 * await findExecutable('jupyter-notebook', '/usr/bin:/bin'); // '/usr/bin/jupyter-notebook'
 */
export async function findExecutable(command: string, searchPath: string): Promise<string | undefined> {
  const candidates = command.includes('/') ? [command] : searchPath.split(':').filter(Boolean).map((dir) => path.join(dir, command));
  for (const candidate of candidates) {
    try {
      const info = await stat(candidate);
      if (!info.isFile()) continue;
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

/** Results of the checks reported in `hello`. */
export interface HostChecks {
  share: boolean;
  jupyter: boolean;
  detail?: string;
}

/**
 * Checks that the share is a writable directory and the Jupyter command exists and is executable.
 *
 * @example
 * const checks = await runChecks(settings); // { share: true, jupyter: true }
 */
export async function runChecks(settings: Pick<AgentSettings, 'sharePath' | 'jupyter'>): Promise<HostChecks> {
  const problems: string[] = [];
  let share = false;
  try {
    const info = await stat(settings.sharePath);
    if (!info.isDirectory()) throw new Error('not a directory');
    await access(settings.sharePath, constants.W_OK);
    share = true;
  } catch (error) {
    problems.push(`share ${settings.sharePath} is not a writable directory (${(error as Error).message})`);
  }
  const command = settings.jupyter.command[0] ?? '';
  const jupyter = (await findExecutable(command, settings.jupyter.path)) !== undefined;
  if (!jupyter) problems.push(`Jupyter command "${command}" not found or not executable`);
  return problems.length > 0 ? { share, jupyter, detail: problems.join('; ') } : { share, jupyter };
}
