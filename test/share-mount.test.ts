// The share over a real network: a "file server" network namespace runs a real OpenSSH sshd exporting a directory
// over SFTP; two "host" namespaces (own address, own /etc, own mount namespace) join the pool with the printed command
// and their agents mount the share with sshfs (pool.yaml `share.mount`). A notebook saved through one host's Jupyter
// is read through the other's; cutting the file server's links makes both instances unhealthy (no new sessions,
// nothing written to the directory under the mount) and the link back makes them ready again. A pool whose share
// will not mount says so in an event and the CLI, and backs off.
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { relative, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { knownHostsLine, mountCommand, runCommand, sshfsContainsSymlinks } from '../src/agent/share-mount.js';
import { BIN, TestPool, alive, executeInKernel, rand, run, waitFor as waitUntil } from './harness.js';
import { canMakeNetns, inHost, makeNetns, privateEtc, removeNetns, userProcesses, type Netns } from './netns.js';

const skip = !existsSync('/usr/bin/jupyter-notebook') ? 'Jupyter is not installed'
  : !existsSync('/usr/bin/sshfs') ? 'sshfs is not installed (bash scripts/bootstrap.sh)'
    : !existsSync('/usr/sbin/sshd') ? 'no OpenSSH server (bash scripts/install-sshd.sh)'
      : !existsSync('/dev/fuse') ? 'no FUSE (/dev/fuse)'
        : canMakeNetns();
if (skip) console.warn(`test/share-mount.test.ts skipped: ${skip}`);

interface InstanceJson {
  id: string;
  state: string;
  address: string | null;
  detail: string | null;
}

const ip = (args: readonly string[]): void => {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
};

/** A /24 of 198.19.0.0/16 that no address or route on this machine is in (other suites make namespaces too). */
function freeBlock(): string {
  const used = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' }) + execFileSync('ip', ['-4', 'route'], { encoding: 'utf8' });
  for (let attempt = 0; attempt < 200; attempt++) {
    const block = `198.19.${Math.floor(Math.random() * 256)}.`;
    if (!used.includes(block)) return block;
  }
  throw new Error('no free /24 in 198.19.0.0/16');
}

describe.skipIf(skip !== undefined)('the share over the network (sshfs from a file server namespace)', () => {
  const hosts: Netns[] = [];
  let fileServer: Netns;
  const agents: ChildProcess[] = [];
  const scratchDirs: string[] = [];
  const pools: TestPool[] = [];
  let sshd: ChildProcess | undefined;
  let pool: TestPool;
  let admin = '';
  const users = { alice: `a${rand()}`, bob: `b${rand()}`, carol: `c${rand()}`, dave: `d${rand()}` };
  const tokens: Record<string, string> = {};
  // Everything of this suite lives under one short root-only folder.
  const base = mkdtempSync('/tmp/dsm-');
  const sharePath = join(base, 'share');
  const exportDir = join(base, 'export');
  const keyFile = join(base, 'keys', 'share_key');
  let service = '';
  let hostKey = '';
  let fsLinks: string[] = [];
  /** Mounts this machine holds besides the hub's view (the local pool's agents made them). */
  const mounts: string[] = [];

  const instances = async (p = pool): Promise<InstanceJson[]> => {
    const response = await p.fetch('/hub/api/instances', { token: admin });
    const text = await response.text();
    if (response.status !== 200) throw new Error(`GET /hub/api/instances: ${response.status} ${text}\n${p.output.slice(-2000)}`);
    return JSON.parse(text) as InstanceJson[];
  };
  const onHost = async (host: Netns): Promise<InstanceJson | undefined> => (await instances()).find((i) => i.address === host.address && i.state !== 'failed' && i.state !== 'stopping');
  const waitFor = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 90_000, p = pool): Promise<T> =>
    waitUntil(what, probe, timeoutMs, async () => `instances: ${JSON.stringify(await instances(p))}\n${p.output.slice(-4000)}`);
  const joinHost = async (host: Netns): Promise<ChildProcess> => {
    const printed = await pool.cli(['instances', 'join-command']);
    expect(printed.code, printed.stderr).toBe(0);
    const match = /^dspool agent join (\S+) --token (\S+)$/.exec(printed.stdout.trim());
    const dir = join(base, host.name);
    mkdirSync(dir, { recursive: true });
    const etc = privateEtc(dir);
    const scratch = `/tmp/dh${rand()}`;
    scratchDirs.push(scratch);
    const [file, argv] = inHost(host, etc, [
      process.execPath, BIN, 'agent', 'join', match?.[1] ?? '', '--token', match?.[2] ?? '', '--state-dir', join(dir, 'state'), '--scratch-dir', scratch, '--log-level', 'warn',
    ]);
    const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    child.stderr?.on('data', (d: Buffer) => (pool.output += `[${host.name}] ${d.toString()}`));
    agents.push(child);
    return child;
  };
  /** What is mounted at the share's path in an agent's own mount namespace (`fstype source`). */
  const mountedIn = (agent: ChildProcess): string =>
    spawnSync('nsenter', [`--mount=/proc/${agent.pid}/ns/mnt`, 'findmnt', '-n', '-o', 'FSTYPE,SOURCE', '--mountpoint', sharePath], { encoding: 'utf8', timeout: 10_000 }).stdout.trim().replace(/\s+/g, ' ');
  /** The directory under the share's mount point on this machine's disk (what a failed mount would expose), listed. */
  const underTheMount = (): string[] => {
    const fsRoot = execFileSync('findmnt', ['-n', '-o', 'TARGET', '-T', base], { encoding: 'utf8' }).trim();
    const view = mkdtempSync('/tmp/dsmv-');
    try {
      // A non-recursive bind of the filesystem holding the share's folder shows it without the mounts on top.
      const listed = execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$1" "$2" && ls -A "$2/$3"', 'sh', fsRoot, view, relative(fsRoot, sharePath)], { encoding: 'utf8' });
      return listed.split('\n').filter(Boolean);
    } finally {
      rmSync(view, { recursive: true, force: true });
    }
  };
  const runCell = async (user: string, code: string): Promise<string> => {
    const response = await pool.fetch(`/user/${user}/api/kernels`, { method: 'POST', token: tokens[user], body: '{}', headers: { 'content-type': 'application/json' } });
    const text = await response.text();
    expect(response.status, text).toBe(201);
    const kernel = JSON.parse(text) as { id: string };
    const wsUrl = `${pool.url.replace('http', 'ws')}/user/${user}/api/kernels/${kernel.id}/channels`;
    return (await executeInKernel(wsUrl, code, { authorization: `token ${tokens[user]}` })).text;
  };
  const serverOf = async (user: string): Promise<{ instance: string | null; ready: boolean } | undefined> => {
    const model = (await (await pool.fetch(`/hub/api/users/${user}`, { token: admin })).json()) as { servers: Record<string, { instance: string | null; ready: boolean }> };
    return model.servers[''];
  };
  const stop = async (user: string): Promise<void> => {
    const response = await pool.fetch(`/hub/api/users/${user}/server`, { method: 'DELETE', token: tokens[user] });
    expect([202, 204]).toContain(response.status);
    await waitFor(`${user}'s server to stop`, async () => (await serverOf(user)) === undefined, 60_000);
  };
  const notebook = (text: string): string => JSON.stringify({
    type: 'notebook',
    content: { cells: [{ cell_type: 'markdown', metadata: {}, source: text }], metadata: {}, nbformat: 4, nbformat_minor: 5 },
  });
  const save = (user: string, file: string, text: string, signal?: AbortSignal): Promise<Response> =>
    pool.fetch(`/user/${user}/api/contents/notebooks/remote/${file}`, {
      method: 'PUT', token: tokens[user], body: notebook(text), headers: { 'content-type': 'application/json' }, ...(signal ? { signal } : {}),
    });
  const addressOf = async (instance: string | null): Promise<string | null | undefined> => (await instances()).find((i) => i.id === instance)?.address;
  /** Takes the file server's links down (or up again); its sshd keeps running. */
  const setFileServerLinks = (up: boolean): void => {
    for (const link of fsLinks) ip(['-n', fileServer.name, 'link', 'set', link, up ? 'up' : 'down']);
    if (up) ip(['-n', fileServer.name, 'route', 'replace', 'default', 'via', fileServer.hostAddress]);
  };
  const shareYaml = (source: string, path = sharePath): string =>
    `share: { path: ${path}, probeInterval: 2s, probeTimeout: 4s, mount: { type: sshfs, source: "${source}", identityFile: ${keyFile}, hostKey: "${hostKey}", timeout: 30s } }`;

  beforeAll(async () => {
    chmodSync(base, 0o755);
    fileServer = makeNetns();
    for (let i = 0; i < 2; i++) hosts.push(makeNetns());
    // The file server's service address (on its loopback), reached by each host over a link of its own, and by this
    // machine (the hub's) over the file server's link here.
    const block = freeBlock();
    service = `${block}1`;
    ip(['-n', fileServer.name, 'addr', 'add', `${service}/32`, 'dev', 'lo']);
    ip(['route', 'add', `${service}/32`, 'via', fileServer.address]);
    fsLinks = [fileServer.hostLink.replace(/^vh/, 'vn')];
    hosts.forEach((host, index) => {
      const id = rand();
      const [fsEnd, hostEnd] = [`fs${id}`, `fh${id}`];
      const [fsAddress, hostAddress] = [`${block}${8 + index * 4 + 1}`, `${block}${8 + index * 4 + 2}`];
      ip(['link', 'add', fsEnd, 'type', 'veth', 'peer', 'name', hostEnd]);
      ip(['link', 'set', fsEnd, 'netns', fileServer.name]);
      ip(['link', 'set', hostEnd, 'netns', host.name]);
      ip(['-n', fileServer.name, 'addr', 'add', `${fsAddress}/30`, 'dev', fsEnd]);
      ip(['-n', host.name, 'addr', 'add', `${hostAddress}/30`, 'dev', hostEnd]);
      ip(['-n', fileServer.name, 'link', 'set', fsEnd, 'up']);
      ip(['-n', host.name, 'link', 'set', hostEnd, 'up']);
      ip(['-n', host.name, 'route', 'add', `${service}/32`, 'via', fsAddress]);
      fsLinks.push(fsEnd);
    });

    // The file server: Debian's sshd as a plain process in its namespace, SFTP only for our key, root's export.
    mkdirSync(exportDir, { mode: 0o755 });
    mkdirSync(join(base, 'keys'), { mode: 0o700 });
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(base, 'keys', 'host_key')]);
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', keyFile]);
    hostKey = readFileSync(join(base, 'keys', 'host_key.pub'), 'utf8').trim().split(' ').slice(0, 2).join(' ');
    writeFileSync(join(base, 'keys', 'authorized_keys'), readFileSync(`${keyFile}.pub`));
    const config = join(base, 'keys', 'sshd_config');
    writeFileSync(config, [
      `ListenAddress ${service}:22`, `HostKey ${join(base, 'keys', 'host_key')}`, 'PidFile none', `AuthorizedKeysFile ${join(base, 'keys', 'authorized_keys')}`,
      'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no',
      'Subsystem sftp internal-sftp', 'LogLevel ERROR', '',
    ].join('\n'));
    sshd = spawn('nsenter', [`--net=/run/netns/${fileServer.name}`, '/usr/sbin/sshd', '-D', '-e', '-f', config], { stdio: ['ignore', 'ignore', 'pipe'] });
    let sshdErr = '';
    sshd.stderr?.on('data', (d: Buffer) => (sshdErr += d.toString()));
    const knownHosts = join(base, 'keys', 'known_hosts');
    writeFileSync(knownHosts, knownHostsLine(hostKey));
    for (let i = 0; ; i++) {
      const probe = await run('/usr/bin/ssh', [
        '-F', '/dev/null', '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'HostKeyAlias=dspool-share', '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes',
        '-o', 'ConnectTimeout=5', '-i', keyFile, `root@${service}`, 'true',
      ], { timeoutMs: 15_000 });
      if (probe.code !== 0 && i > 40) throw new Error(`the file server's sshd does not answer: ${probe.stderr} ${sshdErr}`);
      if (probe.code === 0) break;
      await sleep(250);
    }

    pool = new TestPool({
      shareYaml: shareYaml(`root@${service}:${exportDir}`),
      hubYaml: `hub: { host: 127.0.0.1, port: 0, heartbeatInterval: 1s, privateNetwork: true, agentAddress: "${(hosts[0] as Netns).hostAddress}:0" }`,
      providerYaml: `provider: { type: static, hosts: [${hosts.map((h) => h.address).join(', ')}] }`,
      pool: '{ capacity: { maxSessions: 1 }, repair: { missedHeartbeats: 5, failAfter: 5m, maxShare: 1 } }',
    });
    pools.push(pool);
    await pool.start(120_000);
    admin = await pool.addUser(`r${rand()}`, 'root-pass', true);
    for (const [, name] of Object.entries(users)) tokens[name] = await pool.addUser(name, `${name}-pass`);
  }, 240_000);

  afterAll(async () => {
    if (fileServer) setFileServerLinks(true);
    for (const p of pools) await p.cleanup();
    for (const agent of agents) if (agent.pid && alive(agent.pid)) process.kill(agent.pid, 'SIGTERM');
    const deadline = Date.now() + 20_000;
    while (agents.some((a) => a.pid && alive(a.pid)) && Date.now() < deadline) await sleep(200);
    // What the hosts still run (their sshfs and ssh, a probe stuck on the cut link): started for this suite.
    for (const host of hosts) {
      for (const pid of spawnSync('ip', ['netns', 'pids', host.name], { encoding: 'utf8' }).stdout.split('\n').map(Number)) {
        if (pid > 0 && alive(pid)) process.kill(pid, 'SIGKILL');
      }
    }
    // The hub's own mount of the share and the local pool's (this machine's), then the file server.
    for (const path of [sharePath, ...mounts]) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
    if (sshd?.pid && alive(sshd.pid)) process.kill(sshd.pid, 'SIGTERM');
    if (service) spawnSync('ip', ['route', 'del', `${service}/32`], { stdio: 'ignore' });
    for (const host of [...hosts, ...(fileServer ? [fileServer] : [])]) removeNetns(host);
    // A mount a stopped pool's agent was still attempting (sshfs runs in its own session, so a mount outlives its
    // agent) can land under base after the pools stopped: end such sshfs processes and detach whatever is mounted.
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      try {
        const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
        if (cmd.startsWith('sshfs\0') && cmd.includes(base)) process.kill(Number(entry), 'SIGKILL');
      } catch {
        // gone meanwhile
      }
    }
    for (let attempt = 0; ; attempt++) {
      const mounted = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((line) => line.split(' ')[4] ?? '').filter((p) => p.startsWith(`${base}/`));
      for (const path of mounted) spawnSync('umount', ['-l', path], { stdio: 'ignore' });
      try {
        rmSync(base, { recursive: true, force: true });
        break;
      } catch (error) {
        if (attempt >= 10) throw error;
        await sleep(500);
      }
    }
    for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('mounts the share on both hosts with sshfs before they are ready; the hub machine mounts the same share', async () => {
    const joined = [await joinHost(hosts[0] as Netns), await joinHost(hosts[1] as Netns)];
    for (const host of hosts) await waitFor(`${host.address} ready`, async () => (await onHost(host))?.state === 'ready', 120_000);
    for (const agent of joined) expect(mountedIn(agent)).toBe(`fuse.sshfs root@${service}:${exportDir}`);
    // sshfs cannot keep users apart on the share: the operator is told so when the pool starts.
    expect(pool.output).toContain('warning: share.mount is sshfs');
    // The hub writes nothing under share.path; this machine mounts it the way an agent does, to look at the files.
    const knownHostsFile = join(base, 'keys', 'hub_known_hosts');
    writeFileSync(knownHostsFile, knownHostsLine(hostKey));
    const command = mountCommand(
      { type: 'sshfs', source: `root@${service}:${exportDir}`, port: 22, identityFile: keyFile, hostKey, options: [], timeoutMs: 30_000 }, sharePath, { knownHostsFile, sshfsContainsSymlinks: sshfsContainsSymlinks() },
    );
    expect(await runCommand(command, 30_000)).toEqual({ ok: true, detail: '' });
    expect(underTheMount()).toEqual([]);
  }, 240_000);

  it('reads through host B\'s Jupyter a notebook saved through host A\'s, and $HOME/notebooks/remote resolves on both', async () => {
    const { alice, bob, carol } = users;
    const first = await pool.startServer(alice, tokens[alice] ?? '', 90_000);
    const resolved = `${sharePath}/users/${alice}/notebooks`;
    const where = 'import os; print(os.path.realpath(os.path.expanduser("~/notebooks/remote")), os.path.ismount(' + JSON.stringify(sharePath) + '))';
    expect((await runCell(alice, where)).trim()).toBe(`${resolved} True`);
    const saved = await save(alice, 'from-a.ipynb', 'written on host A');
    expect(saved.status, await saved.text()).toBeLessThan(300);
    // maxSessions 1: bob fills the other host, alice leaves hers to carol, bob leaves: alice lands on the other host.
    const second = await pool.startServer(bob, tokens[bob] ?? '', 90_000);
    await stop(alice);
    await pool.startServer(carol, tokens[carol] ?? '', 90_000);
    await stop(bob);
    const third = await pool.startServer(alice, tokens[alice] ?? '', 90_000);
    expect(third.instance).toBe(second.instance);
    expect(await addressOf(third.instance)).not.toBe(await addressOf(first.instance));
    const read = await pool.fetch(`/user/${alice}/api/contents/notebooks/remote/from-a.ipynb`, { token: tokens[alice] });
    const body = await read.text();
    expect(read.status, body).toBe(200);
    expect(JSON.stringify((JSON.parse(body) as { content: unknown }).content)).toContain('written on host A');
    expect((await runCell(alice, where)).trim()).toBe(`${resolved} True`);
    // The same bytes on the file server's disk and through the hub machine's mount.
    expect(readFileSync(join(exportDir, 'users', alice, 'notebooks', 'from-a.ipynb'), 'utf8')).toContain('written on host A');
    expect(readFileSync(join(resolved, 'from-a.ipynb'), 'utf8')).toContain('written on host A');
  }, 300_000);

  it('makes both instances unhealthy when the file server\'s link is cut: no new session, running ones kept, nothing written locally; ready again when it returns', async () => {
    const { alice, carol, dave } = users;
    await stop(carol);
    const aliceAddress = await addressOf((await serverOf(alice))?.instance ?? null);
    const aliceHost = hosts.find((h) => h.address === aliceAddress) as Netns;
    const uid = ((await (await pool.fetch(`/hub/api/users/${alice}`, { token: admin })).json()) as { uid: number }).uid;
    const before = userProcesses(aliceHost, uid).length;
    expect(before).toBeGreaterThan(0);

    setFileServerLinks(false);
    const cutAt = Date.now();
    await waitFor('both instances to be unhealthy', async () => {
      const list = await instances();
      return list.length >= 2 && list.every((i) => i.state === 'unhealthy') ? list : undefined;
    }, 90_000);
    const detectedMs = Date.now() - cutAt;
    for (const instance of await instances()) expect(instance.detail).toMatch(new RegExp(`share ${sharePath}|mounting sshfs root@${service.replace(/\./g, '\\.')}:`));
    const listed = await pool.cli(['instances', 'list']);
    expect(listed.stdout).toMatch(/\(unhealthy\): .*share/);

    // No new session: dave's request waits instead of being placed on an instance whose share is away.
    const asked = await pool.fetch(`/hub/api/users/${dave}/server`, { method: 'POST', token: tokens[dave] });
    expect(asked.status).toBe(202);
    await sleep(5_000);
    expect((await serverOf(dave))?.ready ?? false).toBe(false);
    expect((await serverOf(dave))?.instance ?? null).toBeNull();

    // Once the agents gave up on the stale mount (a failed mount attempt), a save through alice's Jupyter fails
    // instead of landing on this machine's disk, and her server is still there.
    await waitFor('a failed mount attempt', async () => (await instances()).every((i) => /mounting sshfs .* failed/.test(i.detail ?? '')), 120_000);
    const attempt = await save(alice, 'during-cut.ipynb', 'must not be written locally', AbortSignal.timeout(30_000)).then((r) => r.status, (e: Error) => e.name);
    expect(attempt).not.toBe(200);
    expect(attempt).not.toBe(201);
    expect(underTheMount()).toEqual([]);
    expect(userProcesses(aliceHost, uid).length).toBeGreaterThan(0);
    const events = (await (await pool.fetch('/hub/api/events?limit=300', { token: admin })).json()) as Array<{ kind: string; message: string }>;
    expect(events.some((e) => e.kind === 'instance.state' && /ready → unhealthy \(share /.test(e.message))).toBe(true);
    expect(JSON.stringify(events)).not.toContain(readFileSync(keyFile, 'utf8').split('\n')[1] ?? 'no key line');

    setFileServerLinks(true);
    const backAt = Date.now();
    await waitFor('both instances to be ready again', async () => {
      const list = await instances();
      return list.length >= 2 && list.every((i) => i.state === 'ready');
    }, 150_000);
    const recoveredMs = Date.now() - backAt;
    console.log(`share-mount: cut detected (unhealthy) after ${(detectedMs / 1000).toFixed(1)} s, ready again ${(recoveredMs / 1000).toFixed(1)} s after the link returned`);
    // dave's waiting request is placed now, and alice's server saves to the share again.
    await waitFor('dave\'s server', async () => (await serverOf(dave))?.ready, 120_000);
    const after = await save(alice, 'after-cut.ipynb', 'written after the link returned');
    expect(after.status, await after.text()).toBeLessThan(300);
    expect(readFileSync(join(exportDir, 'users', alice, 'notebooks', 'after-cut.ipynb'), 'utf8')).toContain('written after the link returned');
    expect(existsSync(join(exportDir, 'users', alice, 'notebooks', 'during-cut.ipynb'))).toBe(false);
    expect(underTheMount()).toEqual([]);
  }, 480_000);

  it('mounts the share once for two local instances on this machine (the mount lock), and their users\' files land on it', async () => {
    const localShare = join(base, 'local-share');
    const local = new TestPool({ shareYaml: shareYaml(`root@${service}:${exportDir}`, localShare), providerYaml: 'provider: { type: local }', instances: 2 });
    pools.push(local);
    mounts.push(localShare);
    await local.start(180_000);
    const localAdmin = await local.addUser(`r${rand()}`, 'root-pass', true);
    const listed = (await (await local.fetch('/hub/api/instances', { token: localAdmin })).json()) as InstanceJson[];
    expect(listed.map((i) => i.state)).toEqual(['ready', 'ready']);
    const mountsThere = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => line.split(' ')[4] === localShare);
    expect(mountsThere).toHaveLength(1);
    expect(mountsThere[0]).toContain(`fuse.sshfs root@${service}:${exportDir}`);
    const erin = `e${rand()}`;
    const erinToken = await local.addUser(erin, 'erin-pass');
    await local.startServer(erin, erinToken, 90_000);
    const saved = await local.fetch(`/user/${erin}/api/contents/notebooks/remote/local.ipynb`, {
      method: 'PUT', token: erinToken, body: notebook('from a local instance'), headers: { 'content-type': 'application/json' },
    });
    expect(saved.status, await saved.text()).toBeLessThan(300);
    expect(readFileSync(join(exportDir, 'users', erin, 'notebooks', 'local.ipynb'), 'utf8')).toContain('from a local instance');
    await local.cleanup();
    // The mount outlives the pool (another agent of this machine may use it): the operator's to remove.
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).toContain(` ${localShare} `);
  }, 300_000);

  it('says why a share will not mount (a wrong source) in an event and the CLI, and backs off', async () => {
    const wrong = new TestPool({
      shareYaml: shareYaml(`root@${service}:${join(base, 'no-such-export')}`, join(base, 'wrong-share')),
      providerYaml: 'provider: { type: local }',
      instances: 1,
    });
    pools.push(wrong);
    // `dspool up` waits for a ready instance, which never comes: it prints why meanwhile, and the hub serves.
    void wrong.start(300_000).catch(() => undefined);
    const deadline = Date.now() + 120_000;
    let retries: string[] = [];
    while (Date.now() < deadline) {
      try {
        const hubUrl = wrong.runtime()?.hub_url ?? '';
        const token = readFileSync(join(wrong.dir, 'state', 'secrets', 'admin-token'), 'utf8').trim();
        const events = (await (await fetch(`${hubUrl}/hub/api/events?limit=300`, { headers: { authorization: `token ${token}` } })).json()) as Array<{ kind: string; message: string }>;
        retries = events.filter((e) => e.kind === 'instance.unhealthy' || e.kind === 'instance.state').map((e) => e.message);
        if (retries.some((m) => /trying again in 4 s/.test(m))) break;
      } catch {
        // the hub is still starting
      }
      await sleep(500);
    }
    // A failed attempt leaves nothing mounted. Checked now, just after an attempt failed and seconds before the next:
    // sshfs mounts first and only then finds the remote folder missing (and unmounts), so during an attempt the mount
    // is there for a moment (a CI run read it then, while the slower checks below ran).
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(join(base, 'wrong-share'));
    expect(retries.some((m) => /starting → unhealthy \(mounting sshfs .* failed: .*trying again in 2 s\)/.test(m)), retries.join('\n')).toBe(true);
    expect(retries.some((m) => /trying again in 4 s/.test(m)), retries.join('\n')).toBe(true);
    const listed = await wrong.cli(['instances', 'list', '--json']);
    const [instance] = JSON.parse(listed.stdout) as InstanceJson[];
    expect(instance?.state, listed.stdout).toBe('unhealthy');
    expect(instance?.detail).toMatch(new RegExp(`^mounting sshfs root@.*no-such-export at ${base}/wrong-share failed: sshfs exited with \\d+: .*No such file or directory; trying again in \\d+ s$`));
    const printed = await wrong.cli(['instances', 'list']);
    expect(printed.stdout).toMatch(/\(unhealthy\): mounting sshfs root@.*no-such-export .* failed/);
    expect(wrong.output).toMatch(/instance i-\w+: unhealthy \(mounting sshfs .*No such file or directory/);
  }, 240_000);
});
