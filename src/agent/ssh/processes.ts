// Ends every process a session started, found by its session id in /proc (a pty shell puts its jobs in their
// own process groups, so killing one group is not enough).
import { readdirSync, readFileSync } from 'node:fs';
import { procStat, sendSignal } from '../../lib/process.js';

/**
 * Pids (other than none) whose session id is `sid`, read from /proc/<pid>/stat.
 *
 * @example
 * sessionPids(child.pid); // [4711, 4720]: the session leader and what it started (zombies left out)
 */
export function sessionPids(sid: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = procStat(Number(entry));
    if (stat !== undefined && stat.session === sid && stat.state !== 'Z') pids.push(Number(entry));
  }
  return pids;
}

/** True when the process ignores SIGHUP (started with `nohup` or `trap '' HUP`). */
function ignoresHangup(pid: number): boolean {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = /^SigIgn:\s*([0-9a-f]+)$/m.exec(status);
    return match?.[1] !== undefined && (BigInt(`0x${match[1]}`) & 1n) === 1n;
  } catch {
    return false;
  }
}

/**
 * Hangs up a session the way a closing terminal does: SIGHUP to every process in session `sid`, then, after
 * `graceMs`, SIGKILL to every one still there that does not ignore SIGHUP. What a user started with `nohup`
 * survives (as with OpenSSH); everything else is gone. Resolves when done.
 *
 * @example
 * await hangUpSession(child.pid, 2000);
 */
export async function hangUpSession(sid: number, graceMs: number): Promise<void> {
  const first = sessionPids(sid);
  for (const pid of first) sendSignal(pid, 'SIGHUP');
  sendSignal(sid, 'SIGHUP');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    if (sessionPids(sid).every(ignoresHangup)) break;
  }
  for (const pid of sessionPids(sid)) if (!ignoresHangup(pid)) sendSignal(pid, 'SIGKILL');
}
