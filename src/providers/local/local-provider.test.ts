import { spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { removeAccount } from '../../agent/account.js';
import { createSessionCgroup, detectCgroups, instanceCgroupDirs, instanceCgroupName, killInstanceCgroup, type CgroupHost } from '../../agent/cgroup.js';
import { spawnAsUser } from '../../agent/spawn.js';
import { KernelClient } from '../../agent/kernel-client.js';
import { FakeHub, pidAlive, testSettings, throwawayUser, traversableTempDir } from '../../agent/testing.js';
import { createLogger } from '../../lib/log.js';
import { pidsByEnv, procStat } from '../../lib/process.js';
import type { AgentUser } from '../../protocol/agent.js';
import type { InstanceGone, InstanceSpec } from '../provider.js';
import { InstanceExistsError, InvalidInstanceIdError, ProviderClosedError } from './errors.js';
import { LocalProvider } from './local-provider.js';
import { descendants } from './processes.js';

const AGENT_MAIN = fileURLToPath(new URL('../../../dist/agent/main.js', import.meta.url));
const JOIN_TOKEN = 'join-token-local-provider-0123';
const SERVER_TOKEN = 'server-token-local-provider-0123';
const log = createLogger('local-provider-test', 'silent');
const isRootHost = process.getuid?.() === 0;
const cgroupHost = isRootHost ? detectCgroups() : undefined;

function processGroup(pid: number): number {
  const stat = procStat(pid);
  if (stat === undefined) throw new Error(`no process ${pid}`);
  return stat.pgrp;
}

describe('LocalProvider', () => {
  let root: string;
  let hub: FakeHub;
  let provider: LocalProvider;
  const users: AgentUser[] = [];
  const created: string[] = [];

  function spec(id: string): InstanceSpec {
    const { address: _address, scratchDir: _scratch, ...settings } = testSettings(root);
    return { id, hubUrl: hub.url, joinToken: JOIN_TOKEN, settings };
  }

  beforeAll(async () => {
    root = traversableTempDir('dspool-local-');
    hub = await FakeHub.start();
  });

  afterEach(async () => {
    const cleanup = new LocalProvider({ scratchDir: path.join(root, 'instances'), agentEntry: AGENT_MAIN, log });
    for (const id of created.splice(0)) await cleanup.delete(id, { graceMs: 2000 });
  });

  afterAll(async () => {
    await hub.stop();
    for (const user of users) await removeAccount(user.name).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  it('starts a detached agent that joins the hub, records it, and is listed again by a new provider', async () => {
    provider = new LocalProvider({ scratchDir: path.join(root, 'instances'), agentEntry: AGENT_MAIN, log });
    const instance = await provider.create(spec('i-join'));
    created.push('i-join');
    const pid = instance.details.pid as number;
    expect(instance).toMatchObject({ id: 'i-join', address: '127.0.0.1' });
    const hello = await hub.waitFor((m) => m.type === 'hello' && m.instanceId === 'i-join');
    expect(hello).toMatchObject({ address: '127.0.0.1', checks: { share: true, jupyter: true } });

    const dir = path.join(root, 'instances', 'i-join');
    expect(JSON.parse(readFileSync(path.join(dir, 'instance.json'), 'utf8'))).toMatchObject({ id: 'i-join', pid, address: '127.0.0.1' });
    expect(existsSync(path.join(dir, 'agent.log'))).toBe(true);
    // Its own process group, so a hub restart does not take it down; the token only in its environment.
    expect(processGroup(pid)).toBe(pid);
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8')).not.toContain(JOIN_TOKEN);
    expect(readFileSync(`/proc/${pid}/environ`, 'utf8')).toContain(JOIN_TOKEN);

    await provider.close();
    await provider.close();
    await expect(provider.list()).rejects.toBeInstanceOf(ProviderClosedError);
    expect(pidAlive(pid)).toBe(true);
    const restarted = new LocalProvider({ scratchDir: path.join(root, 'instances'), agentEntry: AGENT_MAIN, log });
    expect(await restarted.list()).toEqual([{ id: 'i-join', address: '127.0.0.1', details: { pid } }]);
    await expect(restarted.create(spec('i-join'))).rejects.toBeInstanceOf(InstanceExistsError);
    await expect(restarted.create(spec('../etc'))).rejects.toBeInstanceOf(InvalidInstanceIdError);
  });

  it('deletes an instance with a running Jupyter server and kernel, leaving no process and no scratch dir', async () => {
    provider = new LocalProvider({ scratchDir: path.join(root, 'instances'), agentEntry: AGENT_MAIN, log });
    const instance = await provider.create(spec('i-del'));
    created.push('i-del');
    const agentPid = instance.details.pid as number;
    await hub.waitFor((m) => m.type === 'hello' && m.instanceId === 'i-del');
    const user = throwawayUser();
    users.push(user);
    const reply = await hub.request('startServer', { sessionId: 'del-1', user, baseUrl: `/user/${user.name}/`, token: SERVER_TOKEN }, 30_000);
    expect(reply.ok).toBe(true);
    const { url, pid: serverPid } = (reply as Extract<typeof reply, { ok: true }>).result as { url: string; pid: number };
    const kernel = await KernelClient.start(url, `/user/${user.name}/`, SERVER_TOKEN);
    expect((await kernel.execute('1 + 1')).text).toBe('2');
    const family = descendants(agentPid);
    expect(family).toContain(serverPid);
    expect(family.length).toBeGreaterThanOrEqual(2); // server and kernel

    await provider.delete('i-del', { graceMs: 8000 });
    for (const pid of [agentPid, ...family]) expect(pidAlive(pid), `pid ${pid}`).toBe(false);
    expect(existsSync(path.join(root, 'instances', 'i-del'))).toBe(false);
    expect(await provider.list()).toEqual([]);
    await provider.delete('i-del');
    await provider.delete('i-never-existed');
  });

  it('says at once when an agent process dies without being asked to, and not for an instance it deletes', async () => {
    const idle = path.join(root, 'idle.mjs');
    writeFileSync(idle, 'setInterval(() => {}, 1000);\n');
    provider = new LocalProvider({ scratchDir: path.join(root, 'instances'), agentEntry: idle, log });
    const gone: InstanceGone[] = [];
    const unwatch = provider.watchGone((event) => gone.push(event));
    const killed = await provider.create(spec('i-killed'));
    const kept = await provider.create(spec('i-deleted'));
    created.push('i-killed', 'i-deleted');
    process.kill(killed.details.pid as number, 'SIGKILL');
    for (let i = 0; i < 100 && gone.length === 0; i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(gone).toEqual([{ id: 'i-killed', reason: 'its agent process was killed by SIGKILL' }]);
    await provider.delete('i-deleted', { graceMs: 1000 });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(pidAlive(kept.details.pid as number)).toBe(false);
    expect(gone).toHaveLength(1);
    unwatch();
  });

  it('kills the agent\'s whole process group when it ignores SIGTERM past the grace period', async () => {
    // A stubborn stand-in agent: ignores SIGTERM and keeps a child in its process group.
    const stubborn = path.join(root, 'stubborn.mjs');
    writeFileSync(
      stubborn,
      `import { spawn } from 'node:child_process';
       import { writeFileSync } from 'node:fs';
       process.on('SIGTERM', () => {});
       const child = spawn('sleep', ['300'], { stdio: 'ignore' });
       writeFileSync('child.pid', String(child.pid));
       setInterval(() => {}, 1000);\n`,
    );
    provider = new LocalProvider({ scratchDir: path.join(root, 'instances'), agentEntry: stubborn, log });
    const instance = await provider.create(spec('i-stubborn'));
    created.push('i-stubborn');
    const pidFile = path.join(root, 'instances', 'i-stubborn', 'child.pid');
    for (let i = 0; i < 100 && !existsSync(pidFile); i++) await new Promise((resolve) => setTimeout(resolve, 50));
    const childPid = Number(readFileSync(pidFile, 'utf8'));
    expect(pidAlive(childPid)).toBe(true);
    const started = Date.now();
    await provider.delete('i-stubborn', { graceMs: 300 });
    expect(Date.now() - started).toBeLessThan(3000);
    expect(pidAlive(instance.details.pid as number)).toBe(false);
    expect(pidAlive(childPid)).toBe(false);
  });

  it('takes along what a user detached on the instance (a process in its own session, its runtime dir on the instance disk)', async () => {
    provider = new LocalProvider({ scratchDir: path.join(root, 'instances'), agentEntry: AGENT_MAIN, log });
    await provider.create(spec('i-detached'));
    created.push('i-detached');
    await hub.waitFor((m) => m.type === 'hello' && m.instanceId === 'i-detached');
    const home = path.join(provider.runtimeDir('i-detached'), 'someone');
    // As `nohup job &` from a shell that then went away: its own session, parent gone, only its runtime dir ties it here.
    const job = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', env: { PATH: '/usr/bin:/bin', XDG_RUNTIME_DIR: home } });
    job.unref();
    const elsewhere = spawn('sleep', ['300'], { detached: true, stdio: 'ignore', env: { PATH: '/usr/bin:/bin', XDG_RUNTIME_DIR: path.join(provider.runtimeDir('i-detached-not'), 'someone') } });
    elsewhere.unref();
    try {
      // Once both have exec'd, their environments are their own.
      const started = Date.now() + 5000;
      while (Date.now() < started && pidsByEnv('XDG_RUNTIME_DIR', (h) => h.includes('someone')).filter((p) => p === job.pid || p === elsewhere.pid).length < 2) {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
      await provider.delete('i-detached', { graceMs: 2000 });
      const deadline = Date.now() + 5000;
      while (pidAlive(job.pid ?? 0) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(pidAlive(job.pid ?? 0)).toBe(false);
      expect(pidAlive(elsewhere.pid ?? 0)).toBe(true);
    } finally {
      for (const child of [job, elsewhere]) if (pidAlive(child.pid ?? 0)) child.kill('SIGKILL');
    }
  });
  it.skipIf(!isRootHost || !cgroupHost)('as root, takes along everything in the instance\'s cgroup, whatever its environment, and removes the cgroup', async () => {
    const host = cgroupHost as CgroupHost;
    provider = new LocalProvider({ scratchDir: path.join(root, 'instances'), agentEntry: AGENT_MAIN, log });
    await provider.create(spec('i-cgroup'));
    created.push('i-cgroup');
    await hub.waitFor((m) => m.type === 'hello' && m.instanceId === 'i-cgroup');
    const mine = createSessionCgroup(host, instanceCgroupName('i-cgroup', provider.instanceDir('i-cgroup')), 's1', { memoryBytes: 0, cpu: 0, pids: 0 });
    const other = createSessionCgroup(host, instanceCgroupName('i-cgroup', path.join(root, 'another-pool', 'i-cgroup')), 's1', { memoryBytes: 0, cpu: 0, pids: 0 });
    const user = throwawayUser();
    const start = (procs: readonly string[]) =>
      spawnAsUser({ file: '/usr/bin/env', args: ['-i', 'sleep', '300'], env: {}, cwd: '/', uid: user.uid, gid: user.gid, groups: [user.gid], umask: 0o077, cgroupProcs: procs }, { stdio: 'ignore', detached: true });
    const job = start(mine.procsFiles);
    const bystander = start(other.procsFiles);
    try {
      const deadline = Date.now() + 5000;
      while ((mine.pids().length === 0 || other.pids().length === 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
      await provider.delete('i-cgroup', { graceMs: 2000 });
      expect(pidAlive(job.pid ?? 0)).toBe(false);
      expect(pidAlive(bystander.pid ?? 0)).toBe(true);
      for (const dir of instanceCgroupDirs(host, instanceCgroupName('i-cgroup', provider.instanceDir('i-cgroup')))) expect(existsSync(dir)).toBe(false);
    } finally {
      await killInstanceCgroup(host, instanceCgroupName('i-cgroup', path.join(root, 'another-pool', 'i-cgroup')), 0);
    }
  });
});
