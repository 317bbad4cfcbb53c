// Whether a process is alive, and which processes run with a given environment value: shared by the CLI (is a hub already
// running?), the agent (a session's leftovers), the local provider (an instance's stragglers) and the tests.
import { readdirSync, readFileSync } from 'node:fs';

/** The fields of `/proc/<pid>/stat` the callers read (`man 5 proc`). */
export interface ProcStat {
  /** One letter: R running, S sleeping, Z zombie, … */
  readonly state: string;
  readonly ppid: number;
  readonly pgrp: number;
  readonly session: number;
  /** The foreground process group of the process's terminal; -1 without one. */
  readonly tpgid: number;
}

/**
 * `/proc/<pid>/stat` read and parsed, or undefined when there is no such process (or no /proc).
 *
 * @example
 * procStat(process.pid)?.ppid; // the parent's PID
 */
export function procStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // The command name may hold spaces and parentheses; the fields (state, ppid, …) resume after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: f[0] ?? '', ppid: Number(f[1]), pgrp: Number(f[2]), session: Number(f[3]), tpgid: Number(f[5]) };
}

/**
 * Whether `pid` exists and is not a zombie (an exited child nobody reaped yet counts as gone). A process that
 * exists but belongs to another user (EPERM) counts as alive.
 *
 * @example
 * pidAlive(process.pid); // true
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = procStat(pid);
  return stat === undefined || stat.state !== 'Z';
}

/**
 * Sends `name` to `pid`, ignoring a process that is already gone (or not ours to signal).
 *
 * @example
 * sendSignal(pid, 'SIGTERM');
 */
export function sendSignal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // already gone
  }
}

/**
 * Live processes (not zombies) whose environment has `name` set to a value satisfying `match`, optionally only those
 * whose real UID is `uid`. Reads /proc (empty elsewhere); other users' environments are readable only as root.
 *
 * @example
 * pidsByEnv('XDG_RUNTIME_DIR', (dir) => dir === '/run/dspool/i-1/alice', 20001); // [4242]
 */
export function pidsByEnv(name: string, match: (value: string) => boolean, uid?: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const prefix = `${name}=`;
  const pids: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const status = readFileSync(`/proc/${entry}/status`, 'utf8');
      if (/^State:\s+Z/m.test(status)) continue;
      if (uid !== undefined && Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]) !== uid) continue;
      const value = readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').find((v) => v.startsWith(prefix));
      if (value !== undefined && match(value.slice(prefix.length))) pids.push(Number(entry));
    } catch {
      // gone meanwhile, or not ours to read
    }
  }
  return pids;
}
