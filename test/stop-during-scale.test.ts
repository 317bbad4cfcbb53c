// Ctrl-C of `dspool up` while instances are still being made (a scale-out just asked for) leaves nothing running:
// every agent the local provider started, and the fork server each one starts, is stopped with the pool.
import { readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { TestPool, rand } from './harness.js';

/** PIDs of processes whose working directory is under `dir` (agents run in their instance's folder). */
function processesUnder(dir: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readlinkSync(`/proc/${entry}/cwd`).startsWith(dir)) found.push(Number(entry));
    } catch {
      // gone, or not ours to read
    }
  }
  return found;
}

describe('stopping the pool during a scale-out', () => {
  let pool: TestPool | undefined;
  afterEach(async () => {
    await pool?.cleanup();
    pool = undefined;
  });

  // Each delay puts the Ctrl-C at another point of the instances' creation (before, while and after their agents spawn).
  it.each([0, 40, 120, 400])('leaves no agent running when Ctrl-C comes %i ms after the scale-out', async (delayMs) => {
    pool = new TestPool({ instances: 0, providerYaml: 'provider: { type: local, scratchDir: ./scratch }' });
    await pool.start();
    const admin = `s${rand()}`;
    const token = await pool.addUser(admin, 'admin-pass', true);
    const scaled = await fetch(`${pool.url}/hub/api/pool`, {
      method: 'PATCH',
      headers: { authorization: `token ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ instances: 3 }),
    });
    expect(scaled.status, await scaled.text()).toBeLessThan(300);
    await sleep(delayMs);
    expect(await pool.stop()).toBe(0);
    const scratch = join(pool.dir, 'scratch');
    // The provider's SIGTERM → SIGKILL grace is a few seconds; anything still there after 15 s was left behind.
    const deadline = Date.now() + 15_000;
    while (processesUnder(scratch).length > 0 && Date.now() < deadline) await sleep(200);
    expect(processesUnder(scratch), pool.output.slice(-3000)).toEqual([]);
  }, 120_000);
});
