// Helpers shared by the agent's and the local provider's tests: temp dirs, throwaway users, settings.
import { randomInt } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentSettings, AgentUser } from '../protocol/agent.js';

/**
 * A fresh temp directory that other accounts can traverse (mkdtemp makes 0700).
 *
 * @internal for tests
 * @example
 * const dir = traversableTempDir('dspool-agent-');
 */
export function traversableTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/**
 * A user with a unique name (`t<random>`) and a random high UID/GID, unlikely to collide with real accounts.
 *
 * @internal for tests
 * @example
 * const user = throwawayUser(); // { name: 't4821937', uid: 61234, gid: 61234 }
 */
export function throwawayUser(): AgentUser {
  const id = 60_000 + randomInt(0, 5_000_000);
  return { name: `t${randomInt(1_000_000, 9_999_999)}`, uid: id, gid: id };
}

/**
 * Agent settings for a test under `root`: scratch and share directories made, Debian's Jupyter.
 *
 * @internal for tests
 * @example
 * const settings = testSettings(traversableTempDir('x-'));
 */
export function testSettings(root: string, overrides: Partial<AgentSettings> = {}): AgentSettings {
  const scratchDir = path.join(root, 'scratch');
  const sharePath = path.join(root, 'share');
  mkdirSync(scratchDir, { recursive: true, mode: 0o755 });
  mkdirSync(sharePath, { recursive: true, mode: 0o755 });
  return {
    address: '127.0.0.1',
    scratchDir,
    sharePath,
    jupyter: { command: ['/usr/bin/jupyter-notebook'], args: [], startTimeoutMs: 30_000, path: '/usr/bin:/usr/local/bin:/bin:/usr/sbin:/sbin' },
    logLevel: 'warn',
    ssh: null,
    ...overrides,
  };
}

/**
 * Whether a process with this pid exists and is not a zombie.
 *
 * @internal for tests
 * @example
 * pidAlive(child.pid!); // true
 */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true;
  }
}

