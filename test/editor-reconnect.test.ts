// End to end on a real pool that scales to zero, with the real OpenSSH client: an editor that reconnects on its own
// (VS Code Remote-SSH: `ssh -T -D <port> host bash`, its script on stdin) neither keeps the pool up nor wakes it.
// Connected and idle — its agent shell waiting, traffic through its SOCKS forward — the server is culled and the pool
// goes to zero; its reconnect then gets the hub's explanation on stderr and starts nothing; an interactive `ssh -t`
// wakes the pool, after which the editor's reconnect works again.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPool, openSshClient, rand, run, sshKeyOptions, waitFor } from './harness.js';

const IDLE_TIMEOUT_S = 12;
const WARN_BEFORE_S = 6;

const ready = existsSync('/usr/bin/jupyter-notebook') && existsSync('/usr/bin/ssh') && existsSync('/usr/bin/ssh-keygen');

/** A free local TCP port (for `ssh -D`). */
async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Reads the first bytes a TCP service sends, through a SOCKS5 proxy (what VS Code's forwards carry). */
function throughSocks(proxyPort: number, host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(proxyPort, '127.0.0.1');
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('socks timeout'));
    }, 10_000);
    let stage = 0;
    let data = Buffer.alloc(0);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.on('connect', () => socket.write(Buffer.from([5, 1, 0])));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      if (stage === 0 && data.length >= 2) {
        data = data.subarray(2);
        stage = 1;
        const name = Buffer.from(host);
        socket.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 255])]));
      }
      if (stage === 1 && data.length >= 10) {
        if (data[1] !== 0) {
          clearTimeout(timer);
          socket.destroy();
          reject(new Error(`socks refused: ${data[1]}`));
          return;
        }
        data = data.subarray(10);
        stage = 2;
      }
      if (stage === 2 && data.includes(10)) {
        clearTimeout(timer);
        socket.destroy();
        resolve(data.toString().split('\n')[0] ?? '');
      }
    });
  });
}

describe.skipIf(!ready)('an editor reconnecting on its own neither keeps the pool up nor wakes it', () => {
  const pool = new TestPool({
    ssh: true,
    pool: `{ instances: 0, min: 0, max: 2, autoscale: { enabled: true, interval: 1s, scaleInDelay: 1s },
      cull: { idleTimeout: ${IDLE_TIMEOUT_S}s, warnBefore: ${WARN_BEFORE_S}s, saveTimeout: 2s, interval: 500ms } }`,
  });
  const keys = mkdtempSync(join(tmpdir(), 'dspool-editor-keys-'));
  const children = new Set<ChildProcess>();
  const user = `ed${rand()}`;
  const key = join(keys, 'id');
  let admin = '';

  type Instance = { id: string; address: string | null; ssh_port: number | null };
  const instances = async () => (await (await pool.fetch('/hub/api/instances', { token: admin })).json()) as Instance[];
  const server = async () =>
    ((await (await pool.fetch(`/hub/api/users/${user}`, { token: admin })).json()) as { servers: Record<string, { ready: boolean }> }).servers[''];
  /** An SSH client kept open (stdin stays open), with stdout and stderr collected. */
  const openSsh = (options: string[], command?: string) =>
    openSshClient([...sshKeyOptions(key, pool.sshPort), ...options, `${user}@127.0.0.1`, ...(command === undefined ? [] : [command])], children);
  /** What VS Code Remote-SSH runs to (re)connect: no terminal, a SOCKS forward, `bash` fed its script on stdin. */
  const editor = async () => {
    const socks = await freePort();
    const ssh = openSsh(['-T', '-D', `127.0.0.1:${socks}`], 'bash');
    ssh.write('echo "agent=$((40+2))"\n');
    return { ...ssh, socks };
  };

  beforeAll(async () => {
    await pool.start();
    admin = await pool.addUser(`ed${rand()}r`, 'root-pass', true);
    await pool.addUser(user, 'pw-editor');
    await pool.addSshKey(user, key);
  }, 120_000);

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await pool.cleanup();
    rmSync(keys, { recursive: true, force: true });
  }, 90_000);

  it('culls the server of a connected, idle editor (its forward carrying traffic) and lets the pool go to zero', async () => {
    expect(await instances()).toEqual([]);
    // The first connection of a user the pool never stopped starts a server, as any SSH session does.
    const first = await editor();
    await waitFor('the editor agent to run', () => first.stdout().includes('agent=42'), 120_000);
    const [instance] = await instances();
    expect(instance?.address && instance.ssh_port).toBeTruthy();
    // Idle, but not silent: the editor's forward carries traffic every 2 s until the connection is ended.
    let forwarded = 0;
    const traffic = (async () => {
      while (first.child.exitCode === null && first.child.signalCode === null) {
        const line = await throughSocks(first.socks, instance?.address ?? '', instance?.ssh_port ?? 0).catch(() => '');
        if (line.startsWith('SSH-')) forwarded++;
        await new Promise((r) => setTimeout(r, 2000));
      }
    })();
    await waitFor('the idle server to be culled', async () => (await server()) === undefined, (IDLE_TIMEOUT_S + WARN_BEFORE_S + 40) * 1000);
    await waitFor('the editor connection to be let go', () => first.child.exitCode !== null || first.child.signalCode !== null, 30_000);
    await traffic;
    expect(forwarded).toBeGreaterThan(2);
    await waitFor('the pool to go to zero', async () => ((await instances()).length === 0 ? true : undefined), 60_000);
  }, 240_000);

  it('does not wake the pool for the editor reconnecting on its own, and tells it how to start the server', async () => {
    const again = await editor();
    const code = await Promise.race([again.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
    expect(code).toBe(1);
    expect(again.stdout()).not.toContain('agent=42');
    expect(again.stderr()).toMatch(/dspool: your server was stopped at \d\d:\d\d UTC \(it did no work for its idle timeout\)/);
    expect(again.stderr()).toMatch(/does not start it again\. Start it with an interactive login \(ssh -t\), on the pool's web page, or with POST \/hub\/api\/users\/\S+\/server/);
    // Nor does any other connection without a terminal (a command, sftp).
    const command = await run('/usr/bin/ssh', [...sshKeyOptions(key, pool.sshPort), '-T', `${user}@127.0.0.1`, 'true']);
    expect(command.code).toBe(1);
    expect(command.stderr).toContain('does not start it again');
    await new Promise((r) => setTimeout(r, 3000));
    expect(await instances()).toEqual([]);
    expect(await server()).toBeUndefined();
    const events = (await (await pool.fetch('/hub/api/events?limit=500', { token: admin })).json()) as Array<{ kind: string; data: Record<string, unknown> }>;
    const started = events.filter((e) => e.kind === 'session.state' && e.data.to === 'starting');
    expect(started).toHaveLength(1); // the first connection's server only
  }, 90_000);

  it('wakes the pool for an interactive `ssh -t`, with progress on the terminal; then the editor reconnects', async () => {
    const terminal = openSsh(['-tt'], 'echo "woke-$((6*7))"');
    const code = await Promise.race([terminal.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 150_000))]);
    expect(code).toBe(0);
    expect(terminal.stdout()).toContain('woke-42');
    // The progress lines came on the channel's stderr (the terminal, never stdout).
    expect(terminal.stderr()).toMatch(/dspool: (starting your session|Waking the pool)/);
    expect(terminal.stdout()).not.toContain('dspool:');
    expect((await instances()).length).toBe(1);
    expect((await server())?.ready).toBe(true);
    const back = await editor();
    await waitFor('the editor agent after the wake', () => back.stdout().includes('agent=42'), 60_000);
    back.child.kill('SIGTERM');
  }, 200_000);
});
