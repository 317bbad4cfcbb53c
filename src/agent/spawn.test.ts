import { spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createSessionCgroup, detectCgroups, killInstanceCgroup } from './cgroup.js';
import type { SpawnSpec } from './spawn-spec.js';
import { spawnAsUser, spawnPlan } from './spawn.js';
import { throwawayUser, traversableTempDir } from './testing.js';

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.warn('src/agent/spawn.test.ts: the as-root cases are skipped (they run processes as another UID)');

/** Runs a spec to completion and returns its stdout, stderr and exit code. */
async function run(spec: SpawnSpec): Promise<{ out: string; err: string; code: number | null }> {
  const child: ChildProcess = spawnAsUser(spec);
  let out = '';
  let err = '';
  child.stdout?.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  return { out, err, code };
}

const PROBE = 'id -u; id -g; id -G; umask; pwd; cat /proc/self/cgroup; echo ---; env | sort';

describe('spawnPlan', () => {
  it('passes the spec environment through unchanged and never puts it in argv', () => {
    const plan = spawnPlan({ file: '/bin/true', args: ['a b'], env: { SECRET: 'hunter2' }, cwd: '/tmp', umask: 0o077, cgroupProcs: [] });
    expect(plan.env).toEqual({ SECRET: 'hunter2' });
    expect(plan.args.join(' ')).not.toContain('hunter2');
    expect(plan.args.slice(-2)).toEqual(['/bin/true', 'a b']);
  });
});

describe('spawnAsUser without IDs (the agent is not root)', () => {
  it('runs as the agent with the umask, cwd and exactly the environment given', async () => {
    const { out, code } = await run({ file: '/bin/sh', args: ['-c', PROBE], env: { PATH: '/usr/bin:/bin', ONLY: 'this' }, cwd: '/tmp', umask: 0o027, cgroupProcs: [] });
    expect(code).toBe(0);
    const [ids, env] = out.split('---\n');
    const lines = (ids ?? '').split('\n');
    expect(lines[0]).toBe(String(process.getuid?.()));
    expect(lines[3]).toBe('0027');
    expect(lines[4]).toBe('/tmp');
    expect((env ?? '').trim().split('\n')).toEqual(['ONLY=this', 'PATH=/usr/bin:/bin', 'PWD=/tmp']);
  });
});

describe.skipIf(!isRoot)('spawnAsUser as root', () => {
  const dir = traversableTempDir('dspool-spawn-');
  const host = detectCgroups();
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('gives the child its UID, GID, supplementary groups, umask 077, cwd and environment — and its cgroup before it runs', async () => {
    const user = throwawayUser();
    const home = path.join(dir, 'home');
    mkdirSync(home, { mode: 0o700 });
    spawnSync('chown', [`${user.uid}:${user.gid}`, home]);
    const cgroup = host ? createSessionCgroup(host, `spawn-test-${process.pid}`, 's1', { memoryBytes: 0, cpu: 0, pids: 0 }) : undefined;
    try {
      const { out, err, code } = await run({
        file: '/bin/sh',
        args: ['-c', PROBE],
        env: { PATH: '/usr/bin:/bin', HOME: home },
        cwd: home,
        uid: user.uid,
        gid: user.gid,
        groups: [user.gid, 4242],
        umask: 0o077,
        cgroupProcs: cgroup?.procsFiles ?? [],
      });
      expect(err).toBe('');
      expect(code).toBe(0);
      const [ids, env] = out.split('---\n');
      const lines = (ids ?? '').split('\n');
      expect(lines.slice(0, 5)).toEqual([String(user.uid), String(user.gid), `${user.gid} 4242`, '0077', home]);
      expect((env ?? '').trim().split('\n')).toEqual([`HOME=${home}`, 'PATH=/usr/bin:/bin', `PWD=${home}`]);
      if (cgroup && host?.version === 1) {
        // Every hierarchy with a session folder lists it for the child (its own cgroup file says so).
        for (const d of cgroup.dirs) expect(ids).toContain(d.slice(d.indexOf('/dspool/')));
      }
    } finally {
      if (host) await killInstanceCgroup(host, `spawn-test-${process.pid}`, 0);
    }
  });

  it('enters the folder as the user, so a folder closed to them fails the start before the program runs', async () => {
    const user = throwawayUser();
    const closed = path.join(dir, 'closed');
    mkdirSync(closed, { mode: 0o700 });
    chmodSync(closed, 0o700);
    const marker = path.join(dir, 'ran');
    const { code, err } = await run({
      file: '/bin/sh',
      args: ['-c', `touch ${marker}`],
      env: { PATH: '/usr/bin:/bin' },
      cwd: closed,
      uid: user.uid,
      gid: user.gid,
      groups: [user.gid],
      umask: 0o077,
      cgroupProcs: [],
    });
    expect(code).toBe(125);
    expect(err).toMatch(/Permission denied/);
    expect(spawnSync('test', ['-e', marker]).status).toBe(1);
  });

  it('does not start the program when it cannot join its cgroup', async () => {
    const user = throwawayUser();
    const { code } = await run({
      file: '/bin/true',
      args: [],
      env: {},
      cwd: '/',
      uid: user.uid,
      gid: user.gid,
      groups: [],
      umask: 0o077,
      cgroupProcs: [path.join(dir, 'no-such-cgroup', 'cgroup.procs')],
    });
    expect(code).toBe(125);
  });
});
