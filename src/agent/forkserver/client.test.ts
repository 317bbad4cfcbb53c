import { execFileSync } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { chownSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import { pidAlive } from '../../lib/process.js';
import { isRoot } from '../host.js';
import type { SpawnSpec } from '../spawn-spec.js';
import { hasDebianPython, traversableTempDir } from '../testing.js';
import { ForkServer, type ForkedProcess } from './client.js';
import { ForkRefusedError, ForkServerLostError, ForkServerUnavailableError } from './errors.js';

const log = createLogger('forkserver-test', 'silent');

/** What a forked child reports about itself: one JSON line on its stdout. */
const REPORT = `
import json, os, random, uuid, sys
fds = sorted(int(fd) for fd in os.listdir('/proc/self/fd'))
print(json.dumps({
  'random': random.random(), 'uuid4': str(uuid.uuid4()), 'uuid1': str(uuid.uuid1()),
  'fds': [fd for fd in fds if os.path.exists('/proc/self/fd/%d' % fd)],
  'fd_targets': {fd: os.readlink('/proc/self/fd/%d' % fd) for fd in fds if os.path.exists('/proc/self/fd/%d' % fd)},
  'env': dict(os.environ), 'uid': os.getuid(), 'euid': os.geteuid(), 'gid': os.getgid(), 'egid': os.getegid(),
  'groups': sorted(os.getgroups()), 'cwd': os.getcwd(), 'umask': os.umask(0),
  'cgroup': open('/proc/self/cgroup').read(),
  'cmdline': open('/proc/self/cmdline', 'rb').read().rstrip(b'\\0').split(b'\\0')[0].decode(),
  'environ_home': [v for v in open('/proc/self/environ', 'rb').read().decode().split('\\0') if v.startswith('HOME=')],
  'preloaded': 'notebook.notebookapp' in sys.modules and 'ipykernel.kernelapp' in sys.modules,
}), flush=True)
`;

async function report(child: ForkedProcess): Promise<Record<string, unknown>> {
  let out = '';
  child.output.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const exit = await child.exited;
  await new Promise((resolve) => setTimeout(resolve, 50));
  expect(exit, out).toEqual({ code: 0, signal: null });
  return JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
}

describe.skipIf(!isRoot() || !hasDebianPython)('ForkServer (needs root and /usr/bin/python3 with notebook 6 and ipykernel)', () => {
  const root = traversableTempDir('dspool-forkserver-');
  const forks = new ForkServer({ socketDir: path.join(root, 'forkserver'), log, restartDelayMs: 100 });
  const cgroup = `/sys/fs/cgroup/pids/dspool-fstest-${randomInt(1e9)}`;
  let cgroupMade = false;
  const uid = 60_000 + randomInt(0, 5_000_000);
  const spec = (over: Partial<SpawnSpec> = {}): SpawnSpec => ({
    file: '/usr/bin/python3',
    args: ['-c', 'pass'],
    env: { HOME: root, PATH: '/usr/bin:/bin', SECRET_OF_THIS_ONE: 'a' },
    cwd: root,
    uid,
    gid: uid + 1,
    groups: [uid + 1, uid + 2],
    umask: 0o027,
    cgroupProcs: cgroupMade ? [path.join(cgroup, 'cgroup.procs')] : [],
    ...over,
  });

  beforeAll(async () => {
    try {
      mkdirSync(cgroup);
      cgroupMade = true;
    } catch {
      // no writable cgroup v1 pids hierarchy here: the cgroup case checks nothing
    }
    await forks.start();
  }, 90_000);

  afterAll(async () => {
    await forks.close();
    if (cgroupMade) rmdirSync(cgroup);
    rmSync(root, { recursive: true, force: true });
  });

  it('forks a child that already has the notebook server and ipykernel imported, runs as the spec says, and pushes readiness', async () => {
    const child = await forks.spawn(spec(), { pythonCode: `send_status('ready', port=4321)\n${REPORT}` });
    await expect(child.ready).resolves.toEqual({ port: 4321 });
    const seen = await report(child);
    expect(seen.preloaded).toBe(true);
    expect([seen.uid, seen.euid, seen.gid, seen.egid]).toEqual([uid, uid, uid + 1, uid + 1]);
    expect(seen.groups).toEqual([uid + 1, uid + 2]);
    expect(seen.umask).toBe(0o027);
    expect(seen.cwd).toBe(root);
    expect(seen.env).toEqual({ HOME: root, PATH: '/usr/bin:/bin', SECRET_OF_THIS_ONE: 'a' });
    // /proc shows the child's own program and environment, not the fork server's (ps, the leftover reaper).
    expect(seen.cmdline).toBe('/usr/bin/python3');
    expect(seen.environ_home).toEqual([`HOME=${root}`]);
    if (cgroupMade) expect(seen.cgroup).toContain(`pids:/${path.basename(cgroup)}`);
  });

  it('gives two children nothing of each other: no shared descriptors, environment or random state', async () => {
    const [a, b] = await Promise.all([
      forks.spawn(spec({ env: { HOME: root, ONLY_A: '1' } }), { pythonCode: REPORT }),
      forks.spawn(spec({ env: { HOME: root, ONLY_B: '1' } }), { pythonCode: REPORT }),
    ]);
    const [ra, rb] = await Promise.all([report(a as ForkedProcess), report(b as ForkedProcess)]);
    expect(ra.random).not.toBe(rb.random);
    expect(ra.uuid4).not.toBe(rb.uuid4);
    expect(ra.uuid1).not.toBe(rb.uuid1);
    expect(ra.env).toEqual({ HOME: root, ONLY_A: '1' });
    expect(rb.env).toEqual({ HOME: root, ONLY_B: '1' });
    // stdin (/dev/null), stdout and stderr (its own output socket), and its own status pipe to the fork server
    // (fd 3, closed by a notebook server once it has said it is ready): nothing else, nothing in common.
    const targets = (r: Record<string, unknown>): Record<string, string> => r.fd_targets as Record<string, string>;
    for (const r of [ra, rb]) {
      expect(r.fds).toEqual([0, 1, 2, 3]);
      expect(targets(r)['0']).toBe('/dev/null');
      expect(targets(r)['1']).toMatch(/^socket:/);
      expect(targets(r)['2']).toBe(targets(r)['1']);
      expect(targets(r)['3']).toMatch(/^pipe:/);
    }
    expect(targets(ra)['1']).not.toBe(targets(rb)['1']);
    expect(targets(ra)['3']).not.toBe(targets(rb)['3']);
  });

  it('execs (after applying the spec) what a fork would not reproduce, and says so instead of pushing readiness', async () => {
    const other = await forks.spawn(spec({ args: ['-c', 'import os; print("execd", os.getuid())'] }));
    let out = '';
    other.output.on('data', (chunk: Buffer) => (out += chunk.toString()));
    expect(await other.ready).toEqual({ port: 0, execReason: expect.stringMatching(/not the notebook 6 entry point/) as unknown as string });
    expect(await other.exited).toEqual({ code: 0, signal: null });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(out).toContain(`execd ${uid}`);

    // A user whose own site-packages hold a module the fork server pre-imported (a newer traitlets, say).
    const home = path.join(root, 'shadow-home');
    const version = execFileSync('/usr/bin/python3', ['-c', 'import sys; print("%d.%d" % sys.version_info[:2])'], { encoding: 'utf8' }).trim();
    const site = path.join(home, '.local', 'lib', `python${version}`, 'site-packages', 'traitlets');
    mkdirSync(site, { recursive: true });
    chownSync(home, uid, uid + 1);
    const shadowed = await forks.spawn(spec({ file: '/usr/bin/jupyter-notebook', args: ['--version'], env: { HOME: home, PATH: '/usr/bin:/bin' }, cwd: '/' }));
    let said = '';
    shadowed.output.on('data', (chunk: Buffer) => (said += chunk.toString()));
    const ready = await shadowed.ready;
    expect(ready.execReason).toMatch(/traitlets in .*shadow-home/);
    await shadowed.exited;
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(said).toMatch(/^6\.\d+\.\d+$/m);
  });

  it('refuses nothing silently: a cwd closed to the user fails the child with the reason', async () => {
    const closed = path.join(root, 'closed');
    mkdirSync(closed, { mode: 0o700 });
    const child = await forks.spawn(spec({ cwd: closed }), { pythonCode: 'print("never")' });
    const error = await child.ready.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ForkRefusedError);
    expect((error as ForkRefusedError).detail).toMatch(/Permission denied/);
    expect((await child.exited).code).toBe(127);
  });

  it('is restarted when it dies; a start in flight fails as lost (the caller execs) and the child dies with it', async () => {
    const waiting = await forks.spawn(spec(), { pythonCode: 'import time\ntime.sleep(60)' });
    const pid = forks.pid as number;
    process.kill(pid, 'SIGKILL');
    await expect(waiting.ready).rejects.toBeInstanceOf(ForkServerLostError);
    await expect(waiting.exited).resolves.toEqual({ code: null, signal: null });
    expect(pidAlive(waiting.pid)).toBe(false);
    await expect(forks.spawn(spec(), { pythonCode: 'pass' })).rejects.toBeInstanceOf(ForkServerUnavailableError);
    for (let i = 0; i < 600 && forks.state !== 'ready'; i++) await new Promise((resolve) => setTimeout(resolve, 100));
    expect(forks.state).toBe('ready');
    expect(forks.pid).not.toBe(pid);
    const again = await forks.spawn(spec(), { pythonCode: REPORT });
    expect((await report(again)).preloaded).toBe(true);
  }, 90_000);

  it('lets no other user ask it for anything: the socket is in a root-only folder', () => {
    const dir = path.join(root, 'forkserver');
    expect(Number(readFileSync(`/proc/${forks.pid as number}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)?.[1])).toBe(0);
    const mode = (statSync(dir).mode & 0o777).toString(8);
    expect(mode).toBe('700');
  });
});

