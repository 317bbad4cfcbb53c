// Live: a pool whose instances are Slurm jobs on a real single-node Slurm (slurmctld + slurmd + munged, started
// here as plain processes, the node in its own network namespace). Start, place a user, run a cell, survive the
// controller's absence, repair a cancelled job, and refuse a bad partition clearly without looping.
import { spawnSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeHub, testSettings } from '../src/agent/testing.js';
import { createLogger } from '../src/lib/log.js';
import { describeProviderConformance } from '../src/providers/conformance.js';
import { SlurmProvider } from '../src/providers/slurm/index.js';
import { TestPool, executeInKernel, rand } from './harness.js';
import { SlurmCluster, slurmSkipReason } from './slurm-cluster.js';

const skip = existsSync('/usr/bin/jupyter-notebook') ? slurmSkipReason() : 'Jupyter is not installed';
if (skip) console.warn(`test/slurm.test.ts skipped: ${skip}`);

interface InstanceJson {
  id: string;
  state: string;
  address: string | null;
  provider: Record<string, string | number>;
}
interface EventJson {
  kind: string;
  message: string;
  instance_id?: string | null;
}

describe.skipIf(skip !== undefined)('a pool of Slurm jobs on a real single-node Slurm', () => {
  const cluster = new SlurmCluster();
  let pool: TestPool;
  let admin = '';
  const alice = `s${rand()}`;
  let aliceToken = '';

  // Short: kernels' IPC sockets live under the instance's disk, and a Unix socket path holds at most 107 bytes.
  const nodeScratch = `/tmp/dsn${rand()}`;
  const providerYaml = (partition: string): string =>
    `provider: { type: slurm, partition: ${partition}, timeLimit: "120", slurmConf: ${cluster.conf}, scratchDir: ${nodeScratch}, pollInterval: 1s }`;
  const newPool = (partition: string): TestPool =>
    new TestPool({
      // Jobs dial the hub's TLS agent listener on the cluster's network, pinning its certificate (passed in the job's
      // environment); the gateway reaches their servers through the agents' TLS relays.
      hubYaml: `hub: { host: 127.0.0.1, port: 0, heartbeatInterval: 1s, agentAddress: "${cluster.ns.hostAddress}:0" }`,
      providerYaml: providerYaml(partition),
      pool: '{ instances: 1, repair: { missedHeartbeats: 5, failAfter: 5m } }',
    });
  const instances = async (): Promise<InstanceJson[]> => (await (await pool.fetch('/hub/api/instances', { token: admin })).json()) as InstanceJson[];
  const events = async (target = pool, token = admin): Promise<EventJson[]> =>
    (await (await target.fetch('/hub/api/events?limit=500', { token })).json()) as EventJson[];
  const runCell = async (code: string): Promise<string> => {
    const kernel = (await (await pool.fetch(`/user/${alice}/api/kernels`, {
      method: 'POST', token: aliceToken, body: '{}', headers: { 'content-type': 'application/json' },
    })).json()) as { id: string };
    const wsUrl = `${pool.url.replace('http', 'ws')}/user/${alice}/api/kernels/${kernel.id}/channels`;
    return (await executeInKernel(wsUrl, code, { authorization: `token ${aliceToken}` })).text;
  };
  const squeue = (): Map<string, string> =>
    new Map(cluster.command('squeue', ['-h', '-a', '--states=all', '-o', '%i|%T']).stdout.split('\n').filter(Boolean).map((l) => l.split('|') as [string, string]));

  beforeAll(async () => {
    await cluster.start();
    pool = newPool(cluster.partition);
    try {
      await pool.start(150_000);
    } catch (error) {
      throw new Error(`${(error as Error).message}\n${cluster.logs()}`);
    }
    admin = await pool.addUser(`r${rand()}`, 'root-pass', true);
    aliceToken = await pool.addUser(alice, 'alice-pass');
  }, 240_000);

  let fakeHub: FakeHub | undefined;
  afterAll(async () => {
    await pool?.cleanup();
    await fakeHub?.stop();
    await cluster.stop();
    rmSync(nodeScratch, { recursive: true, force: true });
  }, 120_000);

  describeProviderConformance('slurm', {
    make: async () => {
      fakeHub ??= await FakeHub.start({ host: cluster.ns.hostAddress });
      return new SlurmProvider({
        stateDir: join(cluster.dir, 'conformance'), slurmConf: cluster.conf, partition: cluster.partition, scratchDir: join(cluster.dir, 'nodes'),
        log: createLogger('conformance', 'silent'), deleteGraceMs: 3000,
      });
    },
    spec: (id) => {
      const { address: _address, scratchDir: _scratch, ...settings } = testSettings(join(cluster.dir, 'conformance-root'));
      return { id, hubUrl: fakeHub?.url ?? '', joinToken: `join-${id}-0123456789`, settings };
    },
    awaitJoin: (id) => (fakeHub as FakeHub).awaitHandshake(id),
    timeoutMs: 90_000,
  });

  it('runs the instance as a Slurm job whose agent joins the hub from the node\'s own address', async () => {
    const [instance] = await instances();
    expect(instance?.state).toBe('ready');
    expect(instance?.address).toBe(cluster.ns.address);
    const jobId = String(instance?.provider.job_id);
    expect(squeue().get(jobId)).toBe('RUNNING');
    const job = cluster.command('scontrol', ['show', 'job', jobId]).stdout;
    expect(job).toContain(`JobName=dspool-${instance?.id}`);
    expect(job).toMatch(/Partition=debug/);
    // The batch script holds no secret: the join token travels in the job's environment only.
    const script = cluster.command('scontrol', ['write', 'batch_script', jobId, '-']).stdout;
    expect(script).toContain('DSPOOL_JOIN_TOKEN');
    expect(script).not.toMatch(/DSPOOL_JOIN_TOKEN=/);
  });

  it('places a user on the job and runs a cell through the gateway', async () => {
    const { instance } = await pool.startServer(alice, aliceToken, 90_000);
    expect(instance).toBe((await instances())[0]?.id);
    expect(await runCell('import socket; print(6*7)')).toContain('42');
    // Behind the agent's TLS relay: the server listens on the node's loopback only.
    const listening = spawnSync('ip', ['netns', 'exec', cluster.ns.name, 'ss', '-Hltnp'], { encoding: 'utf8' }).stdout.split('\n');
    const jupyter = listening.filter((line) => /jupyter|python/.test(line));
    expect(jupyter.length, listening.join('\n')).toBeGreaterThan(0);
    for (const line of jupyter) expect(line).toMatch(/\s127\.0\.0\.1:\d+\s/);
  }, 120_000);

  it('loses nothing while the controller is stopped for 30 s: sessions stay up, no instance is failed', async () => {
    const [before] = await instances();
    await cluster.stopController();
    const until = Date.now() + 30_000;
    while (Date.now() < until) {
      const [now] = await instances();
      expect(now?.id).toBe(before?.id);
      expect(now?.state).toBe('ready');
      await sleep(3000);
    }
    expect(await runCell('print("still here")')).toContain('still here');
    expect((await events()).some((e) => e.kind === 'user.created')).toBe(true);
    cluster.startController();
    const deadline = Date.now() + 60_000;
    while (cluster.sinfo() === '' && Date.now() < deadline) await sleep(500);
    expect(squeue().get(String(before?.provider.job_id))).toBe('RUNNING');
    await sleep(3000);
    const after = await instances();
    expect(after.map((i) => [i.id, i.state])).toEqual([[before?.id, 'ready']]);
    expect((await events()).filter((e) => e.kind === 'instance.failed')).toEqual([]);
    expect(await runCell('print(1+1)')).toContain('2');
  }, 150_000);

  it('repairs an instance whose job is cancelled: failed at once, a new job, the user placed again', async () => {
    const [before] = await instances();
    const jobId = String(before?.provider.job_id);
    expect(cluster.command('scancel', [jobId]).status).toBe(0);
    let replacement: InstanceJson | undefined;
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline && !replacement) {
      replacement = (await instances()).find((i) => i.id !== before?.id && i.state === 'ready');
      if (!replacement) await sleep(500);
    }
    expect(replacement, cluster.logs()).toBeDefined();
    expect(String(replacement?.provider.job_id)).not.toBe(jobId);
    const failed = (await events()).filter((e) => e.kind === 'instance.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]?.message).toMatch(/cancelled \(scancel\)/);
    const { instance } = await pool.startServer(alice, aliceToken, 90_000);
    expect(instance).toBe(replacement?.id);
    expect(await runCell('print(3*3)')).toContain('9');
  }, 180_000);

  it('says clearly that sbatch refused a bad partition, in an event and the CLI, and backs off instead of looping', async () => {
    const bad = newPool('nosuchpartition');
    try {
      await bad.start(150_000);
      expect(bad.output).toMatch(/sbatch_rejected.*Invalid partition name specified/);
      const badAdmin = await bad.addUser(`r${rand()}`, 'root-pass', true);
      const state = (await (await bad.fetch('/hub/api/pool', { token: badAdmin })).json()) as { create_error: { code: string; message: string; attempts: number } | null };
      expect(state.create_error?.code).toBe('sbatch_rejected');
      expect(state.create_error?.message).toMatch(/Invalid partition name specified/);
      await sleep(8000);
      const list = (await events(bad, badAdmin)).filter((e) => e.kind === 'instance.create_failed');
      // Back-off: 2 s, 4 s, 8 s, 16 s… — a handful of tries in the time a loop would make hundreds.
      expect(list.length).toBeGreaterThanOrEqual(2);
      expect(list.length).toBeLessThanOrEqual(6);
      const scaled = await bad.cli(['scale', '1', '--wait']);
      expect(scaled.code).toBe(1);
      expect(scaled.stderr).toMatch(/cannot create instances \(sbatch_rejected\).*Invalid partition name specified/);
    } finally {
      await bad.cleanup();
    }
  }, 240_000);
});
