// Instances on their own hosts: each "host" is a network namespace made here (its own address in 198.18.0.0/15,
// a veth to this machine) running the real agent, joined with the command `dspool instances join-command` prints.
// Placement, routing (HTTP, WebSocket, SSH), drain and repair across those hops; a cut link; a host whose
// accounts clash with the pool's.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, TestPool, alive, executeInKernel, rand, run, sshKeyOptions, waitFor as waitUntil } from './harness.js';
import { canMakeNetns, inHost, makeNetns, privateEtc, removeNetns, setLink, userProcesses, type Netns } from './netns.js';

const skip = !existsSync('/usr/bin/jupyter-notebook') ? 'Jupyter is not installed' : !existsSync('/usr/bin/ssh') ? 'no OpenSSH client' : canMakeNetns();
if (skip) console.warn(`test/multihost.test.ts skipped: ${skip}`);

interface InstanceJson {
  id: string;
  state: string;
  address: string | null;
  detail: string | null;
  sessions: number;
}

describe.skipIf(skip !== undefined)('instances on their own hosts (network namespaces)', () => {
  const hosts: Netns[] = [];
  const agents: ChildProcess[] = [];
  const scratchDirs: string[] = [];
  let pool: TestPool;
  let admin = '';
  const alice = `h${rand()}`;
  const bob = `k${rand()}`;
  let aliceToken = '';
  let bobToken = '';
  let workDir = '';
  const key = (): string => join(workDir, 'alice-key');

  const instances = async (): Promise<InstanceJson[]> => {
    const response = await pool.fetch('/hub/api/instances', { token: admin });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`GET /hub/api/instances: ${response.status} ${text}\n${pool.output.slice(-2000)}`);
    return JSON.parse(text) as InstanceJson[];
  };
  const onHost = async (host: Netns): Promise<InstanceJson | undefined> => (await instances()).find((i) => i.address === host.address && i.state !== 'failed' && i.state !== 'stopping');
  const waitFor = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> =>
    waitUntil(what, probe, timeoutMs, async () => `instances: ${JSON.stringify(await instances())}\n${pool.output.slice(-3000)}`);
  const joinCommand = async (): Promise<{ url: string; token: string }> => {
    const printed = await pool.cli(['instances', 'join-command']);
    expect(printed.code, printed.stderr).toBe(0);
    const match = /^dspool agent join (\S+) --token (\S+)$/.exec(printed.stdout.trim());
    expect(match, printed.stdout).not.toBeNull();
    return { url: match?.[1] ?? '', token: match?.[2] ?? '' };
  };
  /**
   * Runs the printed join command inside the host's namespace, with the host's own /etc (a copy of this machine's
   * made now, without other suites' dspool-team group; `extraPasswd` appended to its passwd): a machine of its own.
   */
  const joinHost = async (host: Netns, extraPasswd = ''): Promise<void> => {
    const { url, token } = await joinCommand();
    const dir = join(workDir, host.name);
    mkdirSync(dir, { recursive: true });
    const etc = privateEtc(dir, extraPasswd);
    // Short: kernels' IPC sockets live under it, and a Unix socket path holds at most 107 bytes.
    const scratch = `/tmp/dh${rand()}`;
    scratchDirs.push(scratch);
    const agentArgs = [process.execPath, BIN, 'agent', 'join', url, '--token', token, '--state-dir', join(dir, 'state'), '--scratch-dir', scratch, '--log-level', 'warn'];
    const [file, argv] = inHost(host, etc, agentArgs);
    const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    child.stderr?.on('data', (d: Buffer) => (pool.output += `[${host.name}] ${d.toString()}`));
    agents.push(child);
  };
  const runCell = async (user: string, token: string, code: string): Promise<string> => {
    const response = await pool.fetch(`/user/${user}/api/kernels`, { method: 'POST', token, body: '{}', headers: { 'content-type': 'application/json' } });
    const text = await response.text();
    expect(response.status, text).toBe(201);
    const kernel = JSON.parse(text) as { id: string };
    const wsUrl = `${pool.url.replace('http', 'ws')}/user/${user}/api/kernels/${kernel.id}/channels`;
    return (await executeInKernel(wsUrl, code, { authorization: `token ${token}` })).text;
  };
  const sshAlice = (command: string) =>
    run('/usr/bin/ssh', [...sshKeyOptions(key(), pool.sshPort), `${alice}@127.0.0.1`, command], { timeoutMs: 90_000 });
  const uidOf = async (user: string): Promise<number> => ((await (await pool.fetch(`/hub/api/users/${user}`, { token: admin })).json()) as { uid: number }).uid;

  beforeAll(async () => {
    for (let i = 0; i < 3; i++) hosts.push(makeNetns());
    const [a, b, c] = hosts as [Netns, Netns, Netns];
    pool = new TestPool({
      ssh: true,
      hubYaml: `hub: { host: 127.0.0.1, port: 0, heartbeatInterval: 1s, privateNetwork: true, agentAddress: "${a.hostAddress}:0" }`,
      providerYaml: `provider: { type: static, hosts: [${a.address}, ${b.address}, ${c.address}] }`,
      pool: '{ repair: { missedHeartbeats: 3, failAfter: 6s, maxShare: 1 }, drain: { deadline: 1h } }',
    });
    workDir = join(pool.dir, 'hosts');
    mkdirSync(workDir, { recursive: true });
    await pool.start(120_000);
    admin = await pool.addUser(`r${rand()}`, 'root-pass', true);
    aliceToken = await pool.addUser(alice, 'alice-pass');
    bobToken = await pool.addUser(bob, 'bob-pass');
    await pool.addSshKey(alice, key());
  }, 240_000);

  afterAll(async () => {
    for (const host of hosts) setLink(host, true);
    await pool?.cleanup();
    for (const agent of agents) {
      if (agent.pid && alive(agent.pid)) process.kill(agent.pid, 'SIGTERM');
    }
    const deadline = Date.now() + 20_000;
    while (agents.some((a) => a.pid && alive(a.pid)) && Date.now() < deadline) await sleep(200);
    for (const agent of agents) if (agent.pid && alive(agent.pid)) process.kill(agent.pid, 'SIGKILL');
    for (const host of hosts) removeNetns(host);
    rmSync(workDir, { recursive: true, force: true });
    for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('turns two machines into ready instances at their own addresses with the printed join command', async () => {
    const [a, b] = hosts as [Netns, Netns];
    await joinHost(a);
    await joinHost(b);
    for (const host of [a, b]) await waitFor(`${host.address} ready`, async () => (await onHost(host))?.state === 'ready');
    const ready = (await instances()).filter((i) => i.state === 'ready').map((i) => i.address).sort();
    expect(ready).toEqual([a.address, b.address].sort());
  }, 180_000);

  it('refuses a used or wrong join token, in an event and in the CLI', async () => {
    const { url, token } = await joinCommand();
    const first = await fetch(new URL('/hub/internal/join', url), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token }) });
    // From this machine's own address, which is not a listed host: the token is spent anyway (one use).
    expect(first.status).toBe(403);
    const reused = await run(process.execPath, [BIN, 'agent', 'join', url, '--token', token, '--state-dir', join(workDir, 'reused')]);
    expect(reused.code).toBe(1);
    expect(reused.stderr).toMatch(/refused this machine \(join_token_invalid\).*wrong, already used or expired/);
    const wrong = await run(process.execPath, [BIN, 'agent', 'join', url, '--token', 'dspj_not-a-real-token-at-all', '--state-dir', join(workDir, 'wrong')]);
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).not.toContain(token);
    const events = (await (await pool.fetch('/hub/api/events?limit=200', { token: admin })).json()) as Array<{ kind: string; message: string }>;
    const refused = events.filter((e) => e.kind === 'instance.join_refused').map((e) => e.message);
    expect(refused.some((m) => /is not one of provider.hosts/.test(m))).toBe(true);
    expect(refused.filter((m) => /wrong, already used or expired/.test(m))).toHaveLength(2);
    expect(JSON.stringify(events)).not.toContain(token);
  });

  it('places users on both hosts and routes HTTP, the kernel WebSocket and SSH across the hops', async () => {
    const [a, b] = hosts as [Netns, Netns];
    const placedA = await pool.startServer(alice, aliceToken, 90_000);
    const placedB = await pool.startServer(bob, bobToken, 90_000);
    const where = new Map((await instances()).map((i) => [i.id, i.address]));
    expect(new Set([where.get(placedA.instance), where.get(placedB.instance)])).toEqual(new Set([a.address, b.address]));
    expect((await pool.fetch(`/user/${alice}/api/status`, { token: aliceToken })).status).toBe(200);
    expect(await runCell(alice, aliceToken, 'import socket; print(socket.gethostbyname(socket.gethostname()) and 6*7)')).toContain('42');
    expect(await runCell(bob, bobToken, 'print("bob here")')).toContain('bob here');
    // SSH: the front door → the instance's SSH server at the host's address; the shell runs in that namespace.
    const shell = await sshAlice('id -u; ip -4 -o addr show 2>/dev/null | grep -o "198\\.1[89]\\.[0-9.]*" | head -1');
    expect(shell.code, shell.stderr).toBe(0);
    const [uid, address] = shell.stdout.trim().split('\n');
    expect(Number(uid)).toBe(await uidOf(alice));
    expect(address).toBe(where.get(placedA.instance));
  }, 180_000);

  it('refuses to make a host ready whose /etc/passwd gives a pool UID to someone else, and says why', async () => {
    const c = hosts[2] as Netns;
    const uid = await uidOf(alice);
    await joinHost(c, `mallory:x:${uid}:${uid}::/nonexistent:/usr/sbin/nologin\n`);
    const instance = await waitFor('the clashing host to report', async () => {
      const found = await onHost(c);
      return found && found.state !== 'starting' ? found : undefined;
    });
    expect(instance.state).toBe('unhealthy');
    expect(instance.detail).toContain(`UID ${uid} belongs to "mallory" on this machine, but the pool gave it to "${alice}"`);
  }, 120_000);

  it('makes a cut-off host unreachable, re-places its user, and runs no second server when the link returns', async () => {
    const where = new Map((await instances()).map((i) => [i.id, i.address]));
    const model = (await (await pool.fetch(`/hub/api/users/${alice}`, { token: aliceToken })).json()) as { servers: Record<string, { instance: string }> };
    const oldInstance = model.servers['']?.instance ?? '';
    const cut = hosts.find((h) => h.address === where.get(oldInstance)) as Netns;
    const other = hosts.find((h) => h !== cut && h !== hosts[2]) as Netns;
    const uid = await uidOf(alice);
    expect(userProcesses(cut, uid).length).toBeGreaterThan(0);

    setLink(cut, false);
    await waitFor('the cut host to be unreachable', async () => (await instances()).find((i) => i.id === oldInstance)?.state === 'unreachable', 30_000);
    // Its processes are untouched: the host does not know it was cut off.
    expect(userProcesses(cut, uid).length).toBeGreaterThan(0);
    await waitFor('the cut host to be failed', async () => !(await instances()).some((i) => i.id === oldInstance && i.state === 'unreachable'), 60_000);
    const again = await pool.startServer(alice, aliceToken, 90_000);
    expect((await instances()).find((i) => i.id === again.instance)?.address).toBe(other.address);
    expect(await runCell(alice, aliceToken, 'print("re-placed")')).toContain('re-placed');

    setLink(cut, true);
    // The old agent is refused, stops what it ran, and joins again as a new instance.
    await waitFor('the host to be back as a new instance', async () => {
      const back = await onHost(cut);
      return back && back.id !== oldInstance && back.state === 'ready';
    }, 90_000);
    await waitFor('alice\'s old server on the cut host to be gone', async () => userProcesses(cut, uid).length === 0, 30_000);
    const servers = ((await (await pool.fetch(`/hub/api/users/${alice}`, { token: aliceToken })).json()) as { servers: Record<string, { instance: string }> }).servers;
    expect(Object.values(servers).map((s) => s.instance)).toEqual([again.instance]);
    expect(userProcesses(other, uid).length).toBeGreaterThan(0);
  }, 240_000);

  it('drains a host across the hop: its user\'s session ends at the deadline, the host comes back as a new instance', async () => {
    const model = (await (await pool.fetch(`/hub/api/users/${alice}`, { token: aliceToken })).json()) as { servers: Record<string, { instance: string }> };
    const instance = model.servers['']?.instance ?? '';
    const address = (await instances()).find((i) => i.id === instance)?.address;
    const drained = await pool.cli(['instances', 'drain', instance, '--deadline', '2s']);
    expect(drained.code, drained.stderr).toBe(0);
    await waitFor('alice\'s session to end', async () => {
      const m = (await (await pool.fetch(`/hub/api/users/${alice}`, { token: aliceToken })).json()) as { servers: Record<string, unknown> };
      return Object.keys(m.servers).length === 0;
    }, 60_000);
    await waitFor('the drained host to come back as a new instance', async () => {
      const back = (await instances()).find((i) => i.address === address && i.state === 'ready');
      return back && back.id !== instance;
    }, 90_000);
    const uid = await uidOf(alice);
    expect(userProcesses(hosts.find((h) => h.address === address) as Netns, uid)).toEqual([]);
  }, 180_000);
});
