import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pidAlive } from '../lib/process.js';
import { endLeftovers, leftoverPids } from './leftovers.js';
import { throwawayUser } from './testing.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('src/agent/leftovers.test.ts skipped: needs root (runs processes as another UID)');

describe.skipIf(!isRoot)('endLeftovers', () => {
  /** Waits until the processes have exec'd (their environment is theirs, not node's, from then on). */
  const until = async (check: () => boolean) => {
    const deadline = Date.now() + 20_000; // a loaded machine can take seconds to exec
    while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  };
  const detached = (uid: number, home: string, command: string) => {
    const child = spawn('/bin/sh', ['-c', command], { uid, gid: uid, env: { XDG_RUNTIME_DIR: home, HOME: '/', PATH: '/usr/bin:/bin' }, detached: true, stdio: 'ignore' });
    child.unref();
    return child.pid ?? 0;
  };

  it('ends the processes of that account and runtime dir only (whatever their HOME), stubborn ones with SIGKILL', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dspool-leftovers-'));
    const { uid } = throwawayUser();
    const mine = join(dir, 'here', 'home');
    const elsewhere = join(dir, 'other-instance', 'home');
    const job = detached(uid, mine, 'exec sleep 60');
    const stubborn = detached(uid, mine, "trap '' TERM; while :; do sleep 1; done");
    const other = detached(uid, elsewhere, 'exec sleep 60');
    try {
      await until(() => [job, stubborn].every((p) => leftoverPids(uid, mine).includes(p)) && leftoverPids(uid, elsewhere).includes(other));
      expect(leftoverPids(uid, mine)).toEqual(expect.arrayContaining([job, stubborn]));
      expect(leftoverPids(uid, mine)).not.toContain(other);
      const found = await endLeftovers(uid, mine, 500, () => true);
      expect(found).toBeGreaterThanOrEqual(2);
      await new Promise((r) => setTimeout(r, 100));
      expect(pidAlive(job)).toBe(false);
      expect(pidAlive(stubborn)).toBe(false);
      expect(pidAlive(other)).toBe(true);
    } finally {
      for (const pid of [job, stubborn, other]) if (pidAlive(pid)) process.kill(-pid, 'SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('touches nothing once the user has a session here again', async () => {
    const { uid } = throwawayUser();
    const home = mkdtempSync(join(tmpdir(), 'dspool-leftovers-home-'));
    const job = detached(uid, home, 'exec sleep 60');
    try {
      await until(() => leftoverPids(uid, home).includes(job));
      expect(leftoverPids(uid, home)).toContain(job);
      expect(await endLeftovers(uid, home, 500, () => false)).toBe(0);
      expect(pidAlive(job)).toBe(true);
    } finally {
      process.kill(-job, 'SIGKILL');
      rmSync(home, { recursive: true, force: true });
    }
  });
});
