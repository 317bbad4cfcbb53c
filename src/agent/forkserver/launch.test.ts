import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import { isRoot } from '../host.js';
import type { SpawnSpec } from '../spawn-spec.js';
import { hasDebianPython, traversableTempDir } from '../testing.js';
import { ForkServer } from './client.js';
import { launch } from './launch.js';

const log = createLogger('launch-test', 'silent');

describe.skipIf(!isRoot() || !hasDebianPython)('launch (needs root and /usr/bin/python3 with notebook 6 and ipykernel)', () => {
  const root = traversableTempDir('dspool-launch-');
  const servers: ForkServer[] = [];
  const spec: SpawnSpec = {
    file: '/usr/bin/python3',
    args: ['-c', 'pass'],
    env: { HOME: root, PATH: '/usr/bin:/bin' },
    cwd: root,
    uid: 65534,
    gid: 65534,
    groups: [65534],
    umask: 0o077,
    cgroupProcs: [],
  };

  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });

  it('waits for a fork server that is still importing, and forks (an exec would import everything again beside it)', async () => {
    const forks = new ForkServer({ socketDir: path.join(root, 'a'), log });
    servers.push(forks);
    void forks.start();
    expect(forks.state).toBe('starting');
    const child = await launch(spec, forks);
    expect(child.how).toBe('fork');
    expect(child.execReason).toBeUndefined();
    expect((await child.closed).code).toBe(0);
  }, 60_000);

  it('execs, with the reason, when the fork server cannot start', async () => {
    const forks = new ForkServer({ socketDir: path.join(root, 'b'), log, python: '/bin/false', restartDelayMs: 60_000 });
    servers.push(forks);
    void forks.start().catch(() => undefined);
    const child = await launch(spec, forks);
    expect(child.how).toBe('exec');
    expect(child.execReason).toMatch(/^the fork server is (restarting|idle|closed)/);
    expect((await child.closed).code).toBe(0);
  }, 60_000);
});
