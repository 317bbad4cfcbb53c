// Process helpers for the local provider, Linux /proc based with a portable fallback.
import { readFileSync, readdirSync } from 'node:fs';
import { procStat } from '../../lib/process.js';

/**
 * The command line of `pid` (arguments joined by spaces), or `undefined` where /proc cannot tell.
 *
 * @example
 * commandLine(record.pid)?.includes(record.agentEntry); // true while that pid still runs the agent
 */
export function commandLine(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return undefined;
  }
}

/**
 * Every descendant of `pid` now alive (children, grandchildren, …), found through /proc; empty elsewhere.
 *
 * @example
 * descendants(agentPid); // [5012, 5031, 5032]: children first, then their children
 */
export function descendants(pid: number): number[] {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (!stat) continue;
    const list = children.get(stat.ppid) ?? [];
    list.push(Number(entry));
    children.set(stat.ppid, list);
  }
  const out: number[] = [];
  const queue = [...(children.get(pid) ?? [])];
  while (queue.length > 0) {
    const next = queue.shift() as number;
    out.push(next);
    queue.push(...(children.get(next) ?? []));
  }
  return out;
}

/**
 * Sends `signal` to a process or (negative pid) a process group, ignoring one that is already gone.
 *
 * @example
 * signal(-pid, 'SIGKILL'); // the agent's whole process group; no throw when it is already gone
 */
export function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}
