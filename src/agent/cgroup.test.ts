import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { pidAlive } from '../lib/process.js';
import { createSessionCgroup, detectCgroups, instanceCgroupDirs, instanceCgroupName, killInstanceCgroup, type CgroupHost } from './cgroup.js';
import { CgroupSetupError } from './errors.js';
import { spawnAsUser } from './spawn.js';
import { throwawayUser, traversableTempDir } from './testing.js';

const dir = traversableTempDir('dspool-cgroup-');
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A fake /proc with the two files `detectCgroups` reads. */
function fakeProc(name: string, mountinfo: string, cgroup: string): string {
  const proc = path.join(dir, name);
  mkdirSync(path.join(proc, 'self'), { recursive: true });
  writeFileSync(path.join(proc, 'self/mountinfo'), mountinfo);
  writeFileSync(path.join(proc, 'self/cgroup'), cgroup);
  return proc;
}

describe('detectCgroups', () => {
  it('finds the agent\'s own folder in each v1 controller hierarchy, even co-mounted and under a container\'s mount root', () => {
    const proc = fakeProc(
      'v1',
      [
        '30 22 0:27 / /sys/fs/cgroup rw - tmpfs tmpfs rw',
        '31 30 0:28 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct',
        '34 30 0:31 /docker/abc /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
        '38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids',
        '40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
        '',
      ].join('\n'),
      '8:pids:/user.slice\n4:memory:/docker/abc/agent\n2:cpu,cpuacct:/\n0::/\n',
    );
    expect(detectCgroups(proc)).toEqual({
      version: 1,
      dirs: { memory: '/sys/fs/cgroup/memory/agent', cpu: '/sys/fs/cgroup/cpu,cpuacct', pids: '/sys/fs/cgroup/pids/user.slice' },
    });
  });

  it('uses the unified hierarchy when no controller is mounted as v1, with the controllers it offers', () => {
    const root = path.join(dir, 'v2fs');
    mkdirSync(path.join(root, 'system.slice/dspool.service'), { recursive: true });
    writeFileSync(path.join(root, 'system.slice/dspool.service/cgroup.controllers'), 'cpuset cpu io memory pids\n');
    const proc = fakeProc('v2', `25 20 0:22 / ${root} rw,nosuid - cgroup2 cgroup2 rw,nsdelegate\n`, '0::/system.slice/dspool.service\n');
    expect(detectCgroups(proc)).toEqual({ version: 2, dir: path.join(root, 'system.slice/dspool.service'), controllers: ['memory', 'cpu', 'pids'] });
  });

  it('says there are none where no cgroupfs is mounted', () => {
    expect(detectCgroups(fakeProc('none', '22 1 0:20 / / rw - ext4 /dev/sda1 rw\n', '0::/\n'))).toBeUndefined();
    expect(detectCgroups(path.join(dir, 'no-proc'))).toBeUndefined();
  });
});

describe('instanceCgroupName', () => {
  it('differs between two pools that both have an instance i-1', () => {
    expect(instanceCgroupName('i-1', '/a/instances/i-1')).not.toBe(instanceCgroupName('i-1', '/b/instances/i-1'));
    expect(instanceCgroupName('i-1', '/a/instances/i-1')).toMatch(/^i-1-[0-9a-f]{8}$/);
  });
});

describe('cgroup v2 (against a folder laid out like cgroupfs)', () => {
  const root = path.join(dir, 'v2');
  mkdirSync(root, { recursive: true });
  writeFileSync(path.join(root, 'cgroup.controllers'), 'cpu memory pids io\n');
  writeFileSync(path.join(root, 'cgroup.subtree_control'), '');
  const host: CgroupHost = { version: 2, dir: root, controllers: ['memory', 'cpu', 'pids'] };

  it('hands the controllers down to the session and writes memory.max, cpu.max and pids.max', () => {
    const cg = createSessionCgroup(host, 'i-1-abc', 's/1', { memoryBytes: 512 * 2 ** 20, cpu: 1.5, pids: 256 });
    const session = path.join(root, 'dspool/i-1-abc/session-s_1');
    expect(cg.dirs).toEqual([session]);
    expect(cg.procsFiles).toEqual([path.join(session, 'cgroup.procs')]);
    for (const parent of [root, path.join(root, 'dspool'), path.join(root, 'dspool/i-1-abc')]) {
      expect(readFileSync(path.join(parent, 'cgroup.subtree_control'), 'utf8')).toBe('+memory +cpu +pids');
    }
    expect(readFileSync(path.join(session, 'memory.max'), 'utf8')).toBe(String(512 * 2 ** 20));
    expect(readFileSync(path.join(session, 'cpu.max'), 'utf8')).toBe('150000 100000');
    expect(readFileSync(path.join(session, 'pids.max'), 'utf8')).toBe('256');
    expect(instanceCgroupDirs(host, 'i-1-abc')).toEqual([path.join(root, 'dspool/i-1-abc')]);
  });

  it('writes "max" for a limit of 0 (none)', () => {
    const cg = createSessionCgroup(host, 'i-1-abc', 's2', { memoryBytes: 0, cpu: 0, pids: 0 });
    const [session] = cg.dirs;
    expect(readFileSync(path.join(session ?? '', 'memory.max'), 'utf8')).toBe('max');
    expect(readFileSync(path.join(session ?? '', 'cpu.max'), 'utf8')).toBe('max 100000');
    expect(readFileSync(path.join(session ?? '', 'pids.max'), 'utf8')).toBe('max');
  });

  it('kills what its cgroup.procs lists, writing cgroup.kill', async () => {
    const cg = createSessionCgroup(host, 'i-1-abc', 's3', { memoryBytes: 0, cpu: 0, pids: 0 });
    const [session = ''] = cg.dirs;
    writeFileSync(path.join(session, 'cgroup.kill'), '');
    const child = spawn('sh', ['-c', 'trap "" TERM; while :; do sleep 1; done'], { stdio: 'ignore' });
    const pid = child.pid ?? 0;
    writeFileSync(cg.procsFiles[0] ?? '', `${pid}\n`);
    expect(cg.pids()).toEqual([pid]);
    expect(await cg.kill(200)).toBe(1);
    expect(pidAlive(pid)).toBe(false);
    expect(readFileSync(path.join(session, 'cgroup.kill'), 'utf8')).toBe('1');
  });

  it('names the agent cgroup when it cannot hand controllers down', () => {
    const busy = path.join(dir, 'v2-busy');
    mkdirSync(path.join(busy, 'cgroup.subtree_control'), { recursive: true }); // a folder: writing it fails
    expect(() => createSessionCgroup({ version: 2, dir: busy, controllers: ['memory'] }, 'i-1', 's1', { memoryBytes: 1, cpu: 0, pids: 0 })).toThrow(CgroupSetupError);
  });
});

const host = detectCgroups();
const isRoot = process.getuid?.() === 0;
if (!isRoot || !host) console.warn(`src/agent/cgroup.test.ts: the real-cgroup cases are skipped (${!isRoot ? 'needs root' : 'no cgroup controllers on this host'})`);

describe.skipIf(!isRoot || !host)('cgroups on this host', () => {
  const real = host as CgroupHost;
  const instance = instanceCgroupName('test', path.join(dir, `instance-${process.pid}`));
  afterAll(async () => {
    await killInstanceCgroup(real, instance, 0);
  });
  const user = throwawayUser();
  const start = (procsFiles: readonly string[], script: string) =>
    spawnAsUser(
      { file: '/bin/sh', args: ['-c', script], env: { PATH: '/usr/bin:/bin', HOME: '/tmp' }, cwd: '/tmp', uid: user.uid, gid: user.gid, groups: [user.gid], umask: 0o077, cgroupProcs: procsFiles },
      { stdio: 'ignore', detached: true },
    );
  const until = async (check: () => boolean, ms = 10_000) => {
    const deadline = Date.now() + ms;
    while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
    return check();
  };

  it(`applies the limits (cgroup v${real?.version ?? '?'})`, () => {
    const cg = createSessionCgroup(real, instance, 'limits', { memoryBytes: 256 * 2 ** 20, cpu: 0.5, pids: 100 });
    const read = (file: string) => readFileSync(cg.dirs.map((d) => path.join(d, file)).find(existsSync) ?? '', 'utf8').trim();
    if (real.version === 1) {
      expect(read('memory.limit_in_bytes')).toBe(String(256 * 2 ** 20));
      expect(read('cpu.cfs_quota_us')).toBe('50000');
    } else {
      expect(read('memory.max')).toBe(String(256 * 2 ** 20));
      expect(read('cpu.max')).toBe('50000 100000');
    }
    expect(read('pids.max')).toBe('100');
  });

  it('ends everything a session started, a detached `env HOME=/ nohup` job included, and removes its folders', async () => {
    const cg = createSessionCgroup(real, instance, 'kill', { memoryBytes: 0, cpu: 0, pids: 0 });
    const shell = start(cg.procsFiles, 'env HOME=/ nohup setsid sleep 1000 >/dev/null 2>&1 & exec sleep 1000');
    expect(await until(() => cg.pids().length === 2)).toBe(true);
    const pids = cg.pids();
    expect(pids).toContain(shell.pid);
    expect(await cg.kill(500)).toBe(2);
    expect(pids.some(pidAlive)).toBe(false);
    await cg.remove();
    for (const d of cg.dirs) expect(existsSync(d)).toBe(false);
  });

  it('kills a process past its memory limit and nothing outside the cgroup', async () => {
    const cg = createSessionCgroup(real, instance, 'oom', { memoryBytes: 64 * 2 ** 20, cpu: 0, pids: 0 });
    const hog = start(cg.procsFiles, 'exec python3 -c "x = bytearray(256 * 2**20); print(len(x))"');
    const bystander = start([], 'exec sleep 30');
    const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => hog.once('exit', (c, s) => resolve([c, s])));
    expect({ code, signal }).toEqual({ code: null, signal: 'SIGKILL' });
    expect(pidAlive(bystander.pid ?? 0)).toBe(true);
    bystander.kill('SIGKILL');
    await cg.remove();
  });

  it('refuses forks past the pids limit', () => {
    const cg = createSessionCgroup(real, instance, 'forks', { memoryBytes: 0, cpu: 0, pids: 5 });
    const result = spawnSync('/bin/sh', ['-c', `echo $$ > ${cg.procsFiles.find((f) => f.includes('/pids/')) ?? cg.procsFiles[0]}; for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait`], { encoding: 'utf8', timeout: 20_000 });
    expect(result.stderr).toMatch(/fork|Resource temporarily unavailable|Cannot/i);
  });

  it('kills and removes a whole instance tree (every session under it)', async () => {
    const other = instanceCgroupName('test-tree', path.join(dir, `tree-${process.pid}`));
    const a = createSessionCgroup(real, other, 'a', { memoryBytes: 0, cpu: 0, pids: 0 });
    const b = createSessionCgroup(real, other, 'b', { memoryBytes: 0, cpu: 0, pids: 0 });
    const jobs = [start(a.procsFiles, 'exec sleep 1000'), start(b.procsFiles, 'env HOME=/ nohup sleep 1000 & wait')];
    expect(await until(() => a.pids().length === 1 && b.pids().length === 2)).toBe(true);
    expect(await killInstanceCgroup(real, other, 200)).toBe(3);
    expect(jobs.map((j) => pidAlive(j.pid ?? 0))).toEqual([false, false]);
    for (const d of instanceCgroupDirs(real, other)) expect(existsSync(d)).toBe(false);
  });
});
