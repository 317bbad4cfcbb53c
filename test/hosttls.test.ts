// TLS between hosts, without hub.privateNetwork: a "host" (a network namespace made here, its own address in
// 198.18.0.0/15) joins with the printed command, which pins the hub's certificate; its users' Jupyter servers listen
// on its loopback only and the gateway reaches them through the agent's TLS relay. The host's veth is captured with
// tcpdump during the join, HTTP, a kernel WebSocket and SSH: no secret (join token, host and instance credentials,
// the Jupyter server's token) and no plain HTTP at all crosses it. A wrong --hub-fingerprint is refused, the token
// unspent.
import Database from 'better-sqlite3';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, TestPool, alive, executeInKernel, rand, run, sshKeyOptions, waitFor as waitUntil } from './harness.js';
import { canMakeNetns, inHost, makeNetns, privateEtc, removeNetns, type Netns } from './netns.js';

const skip = !existsSync('/usr/bin/jupyter-notebook') ? 'Jupyter is not installed'
  : !existsSync('/usr/bin/ssh') ? 'no OpenSSH client'
    : !existsSync('/usr/bin/tcpdump') ? 'no tcpdump (bash scripts/bootstrap.sh --test installs it)'
      : canMakeNetns();
if (skip) console.warn(`test/hosttls.test.ts skipped: ${skip}`);

interface InstanceJson {
  id: string;
  state: string;
  address: string | null;
}

describe.skipIf(skip !== undefined)('TLS between hosts (no privateNetwork)', () => {
  let host: Netns;
  let pool: TestPool;
  let capture: ChildProcess | undefined;
  const agents: ChildProcess[] = [];
  const scratchDirs: string[] = [];
  const capFile = (): string => join(pool.dir, 'veth.pcap');
  const alice = `t${rand()}`;
  let aliceToken = '';
  let admin = '';
  let printed = { url: '', token: '', fingerprint: '' };
  const key = (): string => join(pool.dir, 'alice-key');
  const stateDir = (): string => join(pool.dir, 'host-state');

  const instances = async (): Promise<InstanceJson[]> => (await (await pool.fetch('/hub/api/instances', { token: admin })).json()) as InstanceJson[];
  const waitFor = <T>(what: string, probe: () => Promise<T | undefined | false>, timeoutMs = 90_000): Promise<T> =>
    waitUntil(what, probe, timeoutMs, async () => `instances: ${JSON.stringify(await instances())}\n${pool.output.slice(-3000)}`);

  beforeAll(async () => {
    host = makeNetns();
    pool = new TestPool({
      ssh: true,
      hubYaml: `hub: { host: 127.0.0.1, port: 0, heartbeatInterval: 1s, agentAddress: "${host.hostAddress}:0" }`,
      providerYaml: `provider: { type: static, hosts: [${host.address}] }`,
      // A stopped agent's instance fails soon, so the machine may join again as a new one.
      pool: '{ repair: { missedHeartbeats: 3, failAfter: 6s, maxShare: 1 } }',
    });
    // Everything that crosses the host's link, from before the hub starts.
    capture = spawn('tcpdump', ['-i', host.hostLink, '-n', '--immediate-mode', '-U', '-s', '0', '-w', join(pool.dir, 'veth.pcap')], { stdio: ['ignore', 'ignore', 'pipe'] });
    await waitForFile(join(pool.dir, 'veth.pcap'));
    await pool.start(120_000);
    admin = await pool.addUser(`r${rand()}`, 'root-pass', true);
    aliceToken = await pool.addUser(alice, 'alice-pass');
    await pool.addSshKey(alice, key());
  }, 240_000);

  afterAll(async () => {
    if (capture?.pid && alive(capture.pid)) process.kill(capture.pid, 'SIGINT');
    await pool?.cleanup();
    for (const agent of agents) if (agent.pid && alive(agent.pid)) process.kill(agent.pid, 'SIGTERM');
    const deadline = Date.now() + 20_000;
    while (agents.some((a) => a.pid && alive(a.pid)) && Date.now() < deadline) await sleep(200);
    for (const agent of agents) if (agent.pid && alive(agent.pid)) process.kill(agent.pid, 'SIGKILL');
    if (host) removeNetns(host);
    for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('prints a join command for an https hub URL with the fingerprint of the hub\'s certificate', async () => {
    const out = await pool.cli(['instances', 'join-command']);
    expect(out.code, out.stderr).toBe(0);
    const match = /^dspool agent join (https:\/\/\S+) --token (\S+) --hub-fingerprint (sha256:[0-9a-f]{64})$/.exec(out.stdout.trim());
    expect(match, out.stdout).not.toBeNull();
    printed = { url: match?.[1] ?? '', token: match?.[2] ?? '', fingerprint: match?.[3] ?? '' };
    expect(new URL(printed.url).hostname).toBe(host.hostAddress);
    // The certificate kept in dataDir is the one printed; its key is root's alone.
    const cert = readFileSync(join(pool.dir, 'state', 'agent-tls.crt'), 'utf8');
    const { X509Certificate } = await import('node:crypto');
    expect(`sha256:${createHash('sha256').update(new X509Certificate(cert).raw).digest('hex')}`).toBe(printed.fingerprint);
    const keyMode = spawnSync('stat', ['-c', '%a', join(pool.dir, 'state', 'secrets', 'agent-tls.key')], { encoding: 'utf8' }).stdout.trim();
    expect(keyMode).toBe('600');
  });

  it('refuses a wrong --hub-fingerprint with a clear CLI error, before the token is sent', async () => {
    const wrong = `sha256:${'0'.repeat(64)}`;
    const refused = await run(process.execPath, [BIN, 'agent', 'join', printed.url, '--token', printed.token, '--hub-fingerprint', wrong, '--state-dir', join(pool.dir, 'wrong')]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/hub_fingerprint_mismatch/);
    expect(refused.stderr).toContain(`not the pinned ${wrong}`);
    expect(refused.stderr).toContain(printed.fingerprint);
    expect(refused.stderr).not.toContain(printed.token);
    const malformed = await run(process.execPath, [BIN, 'agent', 'join', printed.url, '--token', printed.token, '--hub-fingerprint', 'sha256:abc']);
    expect(malformed.code).toBe(2);
    expect(malformed.stderr).toContain('--hub-fingerprint');
    const missing = await run(process.execPath, [BIN, 'agent', 'join', printed.url, '--token', printed.token]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain('--hub-fingerprint is required with an https hub URL');
    // Never sent, so never spent: the same one-use token still joins the host below.
  });

  it('joins the host with the printed command, pinned, as a ready instance at its own address', async () => {
    mkdirSync(join(pool.dir, 'host-etc'), { recursive: true });
    const etc = privateEtc(join(pool.dir, 'host-etc'));
    const scratch = `/tmp/dt${rand()}`;
    scratchDirs.push(scratch);
    const [file, argv] = inHost(host, etc, [
      process.execPath, BIN, 'agent', 'join', printed.url, '--token', printed.token, '--hub-fingerprint', printed.fingerprint,
      '--state-dir', stateDir(), '--scratch-dir', scratch, '--log-level', 'warn',
    ]);
    const child = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    child.stderr?.on('data', (d: Buffer) => (pool.output += `[host] ${d.toString()}`));
    agents.push(child);
    await waitFor('the host to be ready', async () => (await instances()).find((i) => i.address === host.address && i.state === 'ready'));
    const saved = JSON.parse(readFileSync(join(stateDir(), 'credential.json'), 'utf8')) as { hubFingerprint?: string };
    expect(saved.hubFingerprint).toBe(printed.fingerprint);
  }, 180_000);

  it('routes HTTP, the kernel WebSocket and SSH to the host; Jupyter listens on the host\'s loopback only', async () => {
    const placed = await pool.startServer(alice, aliceToken, 90_000);
    expect((await instances()).find((i) => i.id === placed.instance)?.address).toBe(host.address);
    const status = await pool.fetch(`/user/${alice}/api/status`, { token: aliceToken });
    expect(status.status).toBe(200);
    const created = await pool.fetch(`/user/${alice}/api/kernels`, { method: 'POST', token: aliceToken, body: '{}', headers: { 'content-type': 'application/json' } });
    const kernel = (await created.json()) as { id: string };
    expect(created.status).toBe(201);
    const result = await executeInKernel(`${pool.url.replace('http', 'ws')}/user/${alice}/api/kernels/${kernel.id}/channels`, 'print(6*7)', { authorization: `token ${aliceToken}` });
    expect(result.text).toContain('42');
    // The only listeners on the host's own address are the agent's relay and SSH server: Jupyter is on 127.0.0.1.
    const listening = spawnSync('ip', ['netns', 'exec', host.name, 'ss', '-Hltnp'], { encoding: 'utf8' }).stdout;
    const jupyterLines = listening.split('\n').filter((line) => /jupyter|python/.test(line));
    expect(jupyterLines.length).toBeGreaterThan(0);
    for (const line of jupyterLines) expect(line).toMatch(/\s127\.0\.0\.1:\d+\s/);
    expect(listening).not.toMatch(new RegExp(`${host.address.replace(/\./g, '\\.')}:\\d+\\s.*(jupyter|python)`));
    const shell = await run('/usr/bin/ssh', [...sshKeyOptions(key(), pool.sshPort), `${alice}@127.0.0.1`, 'echo over-ssh'], { timeoutMs: 90_000 });
    expect(shell.code, shell.stderr).toBe(0);
    expect(shell.stdout).toContain('over-ssh');
  }, 180_000);

  it('sent no secret and no plain HTTP across the host\'s link', async () => {
    await sleep(1_000);
    if (capture?.pid && alive(capture.pid)) process.kill(capture.pid, 'SIGINT');
    await new Promise((resolve) => (capture?.exitCode !== null ? resolve(undefined) : capture.once('exit', resolve)));
    const bytes = readFileSync(capFile());
    const packets = spawnSync('tcpdump', ['-r', capFile(), '-n'], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).length;
    expect(packets).toBeGreaterThan(50);
    const text = bytes.toString('latin1');
    const db = new Database(join(pool.dir, 'state', 'dspool.sqlite'), { readonly: true });
    const serverTokens = (db.prepare('SELECT token FROM sessions').all() as Array<{ token: string }>).map((r) => r.token);
    const credentialHashes = new Set((db.prepare('SELECT join_token_hash FROM instances').all() as Array<{ join_token_hash: string }>).map((r) => r.join_token_hash));
    db.close();
    const hostCredential = (JSON.parse(readFileSync(join(stateDir(), 'credential.json'), 'utf8')) as { hostCredential: string }).hostCredential;
    expect(serverTokens.length).toBeGreaterThan(0);
    for (const secret of [printed.token, hostCredential, aliceToken, ...serverTokens]) expect(text.includes(secret), 'a secret in clear on the link').toBe(false);
    // The instance's own credential (43 base64url characters; the hub keeps only its SHA-256): no run of such
    // characters anywhere in the capture hashes to it.
    expect(credentialHashes.size).toBeGreaterThan(0);
    for (const match of text.matchAll(/[A-Za-z0-9_-]{43,}/g)) {
      for (let i = 0; i + 43 <= match[0].length; i++) {
        expect(credentialHashes.has(createHash('sha256').update(match[0].slice(i, i + 43)).digest('hex'))).toBe(false);
      }
    }
    // Nothing readable as HTTP at all: the agents' join and WebSocket and the gateway → Jupyter hop are all TLS.
    for (const marker of ['HTTP/1.1', 'Authorization', 'authorization', 'Upgrade: websocket', '/hub/internal', `/user/${alice}`, 'DSPOOL-RELAY']) {
      expect(text.includes(marker), `"${marker}" in clear on the link`).toBe(false);
    }
    expect(text.includes('SSH-2.0-'), 'the SSH hop (its banner) in the capture').toBe(true);
  });

  it('lets `dspool agent run` (the systemd unit) join again with the saved credential, pinning the saved fingerprint', async () => {
    const [first] = agents;
    const before = (await instances()).find((i) => i.address === host.address && i.state === 'ready');
    if (first?.pid) process.kill(first.pid, 'SIGTERM');
    await waitFor('the joined agent to stop', async () => first?.exitCode !== null || first.signalCode !== null, 30_000);
    // A credential file whose fingerprint is not the hub's: refused, nothing sent.
    const file = join(stateDir(), 'credential.json');
    const saved = readFileSync(file, 'utf8');
    writeFileSync(file, saved.replace(printed.fingerprint, `sha256:${'1'.repeat(64)}`));
    const refused = await run(process.execPath, [BIN, 'agent', 'run', '--state-dir', stateDir()], { timeoutMs: 30_000 });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('hub_fingerprint_mismatch');
    writeFileSync(file, saved);
    const scratch = `/tmp/dt${rand()}`;
    scratchDirs.push(scratch);
    const [command, argv] = inHost(host, join(pool.dir, 'host-etc', 'etc'), [
      process.execPath, BIN, 'agent', 'run', '--state-dir', stateDir(), '--scratch-dir', scratch, '--log-level', 'warn',
    ]);
    const child = spawn(command, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    child.stderr?.on('data', (d: Buffer) => (pool.output += `[host] ${d.toString()}`));
    agents.push(child);
    const again = await waitFor('the host to be back', async () => (await instances()).find((i) => i.address === host.address && i.state === 'ready' && i.id !== before?.id));
    const placed = await pool.startServer(alice, aliceToken, 90_000);
    expect(placed.instance).toBe(again.id);
    expect((await pool.fetch(`/user/${alice}/api/status`, { token: aliceToken })).status).toBe(200);
  }, 180_000);
});

async function waitForFile(file: string): Promise<void> {
  for (let i = 0; i < 50 && !existsSync(file); i++) await sleep(100);
  await sleep(300);
}
