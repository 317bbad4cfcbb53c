// Whether a process is alive, shared by the CLI (is a hub already running?), the local provider and the tests.
import { readFileSync } from 'node:fs';

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
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses; the state follows the last ')'.
    return stat.charAt(stat.lastIndexOf(')') + 2) !== 'Z';
  } catch {
    return true;
  }
}
