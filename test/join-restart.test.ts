// A join command outlives a hub restart: the token is printed, the hub is killed with kill -9 and comes back, then a
// machine (a network namespace made here, 198.18.0.0/15) joins with it once; a second use is refused.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BIN, TestPool, alive, rand, run } from './harness.js';
import { canMakeNetns, inHost, makeNetns, privateEtc, removeNetns, type Netns } from './netns.js';

const skip = !existsSync('/usr/bin/jupyter-notebook') ? 'Jupyter is not installed' : canMakeNetns();
if (skip) console.warn(`test/join-restart.test.ts skipped: ${skip}`);

describe.skipIf(skip !== undefined)('join tokens across a hub restart', () => {
  let host: Netns;
  let pool: TestPool;
  let agent: ChildProcess | undefined;
  let admin = '';
  const scratch = `/tmp/dj${rand()}`;

  beforeAll(async () => {
    host = makeNetns();
    pool = new TestPool({
      hubYaml: `hub: { host: 127.0.0.1, port: 0, heartbeatInterval: 1s, privateNetwork: true, agentAddress: "${host.hostAddress}:0" }`,
      providerYaml: `provider: { type: static, hosts: [${host.address}] }`,
      instances: 1,
    });
    await pool.start(120_000);
    admin = await pool.addUser(`r${rand()}`, 'root-pass', true);
  }, 180_000);

  afterAll(async () => {
    await pool?.cleanup();
    if (agent?.pid && alive(agent.pid)) process.kill(agent.pid, 'SIGTERM');
    const deadline = Date.now() + 20_000;
    while (agent?.pid && alive(agent.pid) && Date.now() < deadline) await sleep(200);
    if (agent?.pid && alive(agent.pid)) process.kill(agent.pid, 'SIGKILL');
    if (host) removeNetns(host);
    rmSync(scratch, { recursive: true, force: true });
  }, 120_000);

  it('takes a join command printed before the hub was killed, once', async () => {
    const printed = await pool.cli(['instances', 'join-command']);
    expect(printed.code, printed.stderr).toBe(0);
    const match = /^dspool agent join (\S+) --token (\S+)$/.exec(printed.stdout.trim());
    expect(match, printed.stdout).not.toBeNull();
    const [, printedUrl = '', token = ''] = match ?? [];

    await pool.killHub(60_000);
    // The restarted hub listens for agents on the port it had (ephemeral in this config): the printed command as it is.
    const now = await pool.cli(['instances', 'join-command']);
    expect(/^dspool agent join (\S+) --token/.exec(now.stdout.trim())?.[1]).toBe(printedUrl);
    const url = printedUrl;

    const dir = join(pool.dir, 'host');
    mkdirSync(dir, { recursive: true });
    const [file, argv] = inHost(host, privateEtc(dir), [
      process.execPath, BIN, 'agent', 'join', url, '--token', token, '--state-dir', join(dir, 'state'), '--scratch-dir', scratch, '--log-level', 'warn',
    ]);
    agent = spawn(file, argv, { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    agent.stderr?.on('data', (d: Buffer) => (pool.output += `[${host.name}] ${d.toString()}`));
    let state = '';
    const until = Date.now() + 90_000;
    while (Date.now() < until && state !== 'ready') {
      const list = (await (await pool.fetch('/hub/api/instances', { token: admin })).json()) as Array<{ address: string | null; state: string }>;
      state = list.find((i) => i.address === host.address)?.state ?? '';
      if (state !== 'ready') await sleep(300);
    }
    expect(state, pool.output.slice(-3000)).toBe('ready');

    const reused = await run(process.execPath, [BIN, 'agent', 'join', url, '--token', token, '--state-dir', join(dir, 'reused')]);
    expect(reused.code).toBe(1);
    expect(reused.stderr).toMatch(/refused this machine \(join_token_invalid\).*wrong, already used or expired/);
    expect(reused.stderr).not.toContain(token);
  }, 240_000);
});
