// When a user's session on this instance is over, what it left running goes too: the processes of the user's own
// account whose XDG_RUNTIME_DIR is the user's runtime dir on this instance (a job detached with `nohup`, a VS Code
// server). Not HOME: that is on the share, the same on every instance. They could hold GPUs the hub has since granted
// to someone else. Only as root, where the account is the user's alone.
import { pidAlive, pidsByEnv, sendSignal } from '../lib/process.js';

/**
 * Live processes whose real UID is `uid` and whose environment has `XDG_RUNTIME_DIR=<runtimeDir>`.
 *
 * @example
 * leftoverPids(20001, '/run/dspool/i-1/alice'); // [4242, 4250]
 */
export function leftoverPids(uid: number, runtimeDir: string): number[] {
  return pidsByEnv('XDG_RUNTIME_DIR', (dir) => dir === runtimeDir, uid);
}

/**
 * Ends the session's leftovers: SIGTERM, then SIGKILL after `graceMs` for those still there. `stillOver()` is asked
 * right before signalling, so a new session of the same user started meanwhile is never touched (its processes are
 * not in the list taken then). Resolves with how many processes it found.
 *
 * @example
 * await endLeftovers(user.uid, paths.runtimeDir, 5_000, () => !agent.hasServerOf(user.name));
 */
export async function endLeftovers(uid: number, runtimeDir: string, graceMs: number, stillOver: () => boolean): Promise<number> {
  if (!stillOver()) return 0;
  const pids = leftoverPids(uid, runtimeDir);
  if (pids.length === 0 || !stillOver()) return 0;
  for (const pid of pids) sendSignal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  let left = pids;
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    left = left.filter(pidAlive);
  }
  for (const pid of left) sendSignal(pid, 'SIGKILL');
  return pids.length;
}

