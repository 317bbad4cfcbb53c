// End to end on a real pool with a short idle timeout: idle means "no work", never "no traffic". An idle open
// notebook page (a client polling like Jupyter's tabs, kernel WebSockets reconnecting) and idle connected SSH
// clients (a shell, a VS Code-like agent) do not keep a session; a running cell and `sleep` typed into an SSH
// terminal do. The user is warned before the stop (the server model's notice, a line on the terminal), `dspool
// extend` postpones it, an exempt user is never culled, and the stop reason is shown at the next login.
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestPool, executeInKernel, openSshClient, rand, sshKeyOptions, waitFor, type SshClient } from './harness.js';

/** Short enough for a test, long enough for a loaded machine: the warning comes 6 s before the stop. */
const IDLE_TIMEOUT_S = 12;
const WARN_BEFORE_S = 6;

const ready = existsSync('/usr/bin/jupyter-notebook') && existsSync('/usr/bin/ssh') && existsSync('/usr/bin/ssh-keygen');

interface ServerFields {
  ready: boolean;
  notice: string | null;
  cull_at: string | null;
  save_requested: boolean;
}
interface EventJson {
  kind: string;
  user: string | null;
  time: string;
  message: string;
  data: Record<string, unknown>;
}

describe.skipIf(!ready)('idle sessions are culled on no work, never kept up by traffic', () => {
  const pool = new TestPool({
    instances: 1,
    ssh: true,
    poolYaml: `cull: { idleTimeout: ${IDLE_TIMEOUT_S}s, warnBefore: ${WARN_BEFORE_S}s, saveTimeout: 2s, interval: 500ms }`,
  });
  const keys = mkdtempSync(join(tmpdir(), 'dspool-cull-keys-'));
  const children = new Set<ChildProcess>();
  let adminToken = '';

  const server = async (user: string): Promise<ServerFields | undefined> => {
    const model = (await (await pool.fetch(`/hub/api/users/${user}`, { token: adminToken })).json()) as { servers: Record<string, ServerFields> };
    return model.servers[''];
  };
  const events = async (user: string): Promise<EventJson[]> =>
    ((await (await pool.fetch('/hub/api/events?limit=1000', { token: adminToken })).json()) as EventJson[]).filter((e) => e.user === user);
  /** A user with a server running and an SSH key registered. */
  const newUser = async (prefix: string): Promise<{ name: string; token: string; key: string }> => {
    const name = `${prefix}${rand()}`;
    const token = await pool.addUser(name, `${name}-pass`);
    const key = join(keys, name);
    await pool.addSshKey(name, key);
    await pool.startServer(name, token);
    return { name, token, key };
  };
  /** An SSH client kept open (stdin stays open), with its output collected. */
  const openSsh = (user: string, key: string, options: string[], command?: string): SshClient =>
    openSshClient([...sshKeyOptions(key, pool.sshPort), ...options, `${user}@127.0.0.1`, ...(command === undefined ? [] : [command])], children);

  beforeAll(async () => {
    await pool.start();
    adminToken = await pool.addUser(`a${rand()}`, 'admin-pass', true);
  }, 180_000);

  afterAll(async () => {
    for (const child of children) child.kill('SIGKILL');
    await pool.cleanup();
    rmSync(keys, { recursive: true, force: true });
  }, 90_000);

  it('stops a server behind an idle open notebook page (polling, reconnecting), after a warning, and says why at the next login', async () => {
    const { name, token } = await newUser('p');
    const cookie = await pool.login(name, `${name}-pass`);
    const kernel = (await (await pool.fetch(`/user/${name}/api/kernels`, { method: 'POST', token, body: '{}', headers: { 'content-type': 'application/json' } })).json()) as { id: string };
    // What an open tab does on its own: Jupyter's list refreshes and session polls, the banner script's poll of
    // the hub, and a kernel WebSocket that drops and reconnects.
    let polling = true;
    const tab = (async () => {
      const headers = { accept: 'application/json', 'sec-fetch-mode': 'cors' };
      let ws: WebSocket | undefined;
      for (let round = 0; polling; round++) {
        for (const path of ['api/contents?type=directory', 'api/kernels', 'api/sessions', 'api/terminals']) {
          await pool.fetch(`/user/${name}/${path}`, { cookie, headers }).then((r) => r.body?.cancel()).catch(() => undefined);
        }
        await pool.fetch(`/hub/api/users/${name}`, { cookie, headers: { 'x-dspool-page': '1' } }).then((r) => r.body?.cancel()).catch(() => undefined);
        if (round % 5 === 0) {
          ws?.close();
          ws = new WebSocket(`${pool.url.replace('http', 'ws')}/user/${name}/api/kernels/${kernel.id}/channels`, { headers: { cookie, origin: pool.url } });
          ws.on('error', () => undefined);
        }
        await new Promise((r) => setTimeout(r, 700));
      }
      ws?.close();
    })();
    try {
      const warned = await waitFor('the idle warning in the server model', async () => {
        const s = await server(name);
        return s?.cull_at ? s : undefined;
      }, (IDLE_TIMEOUT_S + 20) * 1000);
      expect(warned.notice).toMatch(/has done no work since .* will be stopped at/);
      expect(Date.parse(warned.cull_at ?? '')).toBeGreaterThan(Date.now());
      await waitFor('the server to be culled', async () => (await server(name)) === undefined, (WARN_BEFORE_S + 25) * 1000);
    } finally {
      polling = false;
      await tab;
    }
    const kinds = (await events(name)).map((e) => e.kind).reverse(); // oldest first
    expect(kinds.indexOf('session.cull_warning')).toBeGreaterThanOrEqual(0);
    expect(kinds.indexOf('session.culled')).toBeGreaterThan(kinds.indexOf('session.cull_warning'));
    // The next login: the home page says why the server stopped.
    const again = await pool.login(name, `${name}-pass`);
    const home = await (await pool.fetch('/hub/home', { cookie: again })).text();
    expect(home).toMatch(/id="last-stop"[^>]*>Your last server stopped at [^<]*: stopped because it did no work for 12 s/);
    // Counted on the hub's metrics: the culler's actions, and the server stopped with cause "idle".
    const metrics = await (await pool.fetch('/hub/metrics', { token: adminToken })).text();
    expect(metrics).toMatch(/dspool_cull_decisions_total\{action="warn"\} [1-9]/);
    expect(metrics).toMatch(/dspool_cull_decisions_total\{action="cull"\} [1-9]/);
    expect(metrics).toMatch(/dspool_sessions_stopped_total\{cause="idle"\} [1-9]/);
  }, 150_000);

  it('keeps a server while a cell runs longer than the timeout, and starts counting when it ends', async () => {
    const { name, token } = await newUser('c');
    const kernel = (await (await pool.fetch(`/user/${name}/api/kernels`, { method: 'POST', token, body: '{}', headers: { 'content-type': 'application/json' } })).json()) as { id: string };
    const wsUrl = `${pool.url.replace('http', 'ws')}/user/${name}/api/kernels/${kernel.id}/channels`;
    const cellSeconds = IDLE_TIMEOUT_S + WARN_BEFORE_S + 6;
    const cellStart = Date.now();
    const result = await executeInKernel(wsUrl, `import time\ntime.sleep(${cellSeconds})\nprint("cell done")`, { authorization: `token ${token}` });
    const cellEnd = Date.now();
    expect(result.text).toContain('cell done');
    expect(result.roundTripMs).toBeGreaterThanOrEqual(cellSeconds * 1000);
    expect((await server(name))?.ready).toBe(true);
    // It was never stopped, and no warning stood while the cell ran: one given while the kernel was still starting
    // (a loaded machine) was withdrawn as soon as the agent reported it executing.
    const cullEvents = (await events(name)).filter((e) => e.kind.startsWith('session.cull')).reverse(); // oldest first
    const inCell = cullEvents.filter((e) => Date.parse(e.time) <= cellEnd);
    expect(inCell.at(-1)?.kind ?? 'none').not.toBe('session.cull_warning');
    expect(inCell.filter((e) => e.kind === 'session.cull_warning' && Date.parse(e.time) > cellStart + 10_000)).toEqual([]);
    expect((await events(name)).map((e) => e.kind)).not.toContain('session.culled');
    const warningsBefore = (await events(name)).filter((e) => e.kind === 'session.cull_warning').length;
    // Once the cell is over the session is idle: the warning comes a timeout minus the lead after the end.
    const warning = await waitFor('the warning after the cell', async () => {
      const warnings = (await events(name)).filter((e) => e.kind === 'session.cull_warning');
      return warnings.length > warningsBefore ? warnings[0] : undefined; // newest first
    }, (IDLE_TIMEOUT_S + 15) * 1000);
    expect(Date.parse(warning.time) - cellEnd).toBeGreaterThanOrEqual((IDLE_TIMEOUT_S - WARN_BEFORE_S - 2) * 1000);
  }, 150_000);

  it('keeps a server while `sleep` runs in an SSH terminal, then warns on that terminal and stops it', async () => {
    const { name, key } = await newUser('z');
    const terminal = openSsh(name, key, ['-tt']);
    await waitFor('the shell', () => terminal.output().length > 0, 30_000);
    const sleepSeconds = IDLE_TIMEOUT_S + WARN_BEFORE_S + 6;
    terminal.write(`sleep ${sleepSeconds}; echo slept-$((6*7))\n`);
    await waitFor('the sleep to end', () => terminal.output().includes('slept-42'), (sleepSeconds + 30) * 1000);
    expect((await server(name))?.ready).toBe(true);
    expect((await events(name)).filter((e) => e.kind.startsWith('session.cull'))).toEqual([]);
    // Idle now: the warning is written on the terminal (a wall line), then the session ends.
    await waitFor('the wall line', () => /\[dspool\] This session has done no work since .* will be stopped at/.test(terminal.output()), (IDLE_TIMEOUT_S + 20) * 1000);
    await waitFor('the server to be culled', async () => (await server(name)) === undefined, (WARN_BEFORE_S + 25) * 1000);
    await waitFor('the SSH client to be let go', () => terminal.child.exitCode !== null || terminal.child.signalCode !== null, 20_000);
  }, 150_000);

  it('stops a server with an idle connected SSH shell and an idle VS Code-like agent connected', async () => {
    const { name, key } = await newUser('v');
    const shell = openSsh(name, key, ['-tt']);
    // VS Code Remote-SSH: `ssh -T host bash`, its script on stdin, then the connection just stays.
    const vscode = openSsh(name, key, ['-T'], 'bash');
    vscode.write('echo "agent=$((40+2))"\n');
    await waitFor('the agent to run', () => vscode.output().includes('agent=42'), 30_000);
    // It reconnects on its own once: a new connection, the same script.
    const again = openSsh(name, key, ['-T'], 'bash');
    again.write('echo "agent=$((40+2))"\n');
    await waitFor('the reconnected agent', () => again.output().includes('agent=42'), 30_000);
    const start = Date.now();
    await waitFor('the wall line on the idle shell', () => /will be stopped at/.test(shell.output()), (IDLE_TIMEOUT_S + 20) * 1000);
    await waitFor('the server to be culled', async () => (await server(name)) === undefined, (WARN_BEFORE_S + 25) * 1000);
    expect(Date.now() - start).toBeLessThan((IDLE_TIMEOUT_S + WARN_BEFORE_S + 40) * 1000);
    const culled = (await events(name)).find((e) => e.kind === 'session.culled');
    expect(culled?.message).toMatch(/did no work for 12 s/);
  }, 150_000);

  it('postpones the stop with `dspool extend`, and never culls a user an admin exempted', async () => {
    const exempt = `x${rand()}`;
    const exemptToken = await pool.addUser(exempt, 'x-pass');
    const marked = await pool.cli(['users', 'exempt', exempt, '--json']);
    expect(marked.code, marked.stderr).toBe(0);
    expect(JSON.parse(marked.stdout)).toMatchObject({ name: exempt, cull_exempt: true });
    await pool.startServer(exempt, exemptToken);
    const { name } = await newUser('e');
    const warned = await waitFor('the warning', async () => {
      const s = await server(name);
      return s?.cull_at ? s : undefined;
    }, (IDLE_TIMEOUT_S + 20) * 1000);
    const extended = await pool.cli(['extend', '--user', name, '--for', '40s', '--json']);
    expect(extended.code, extended.stderr).toBe(0);
    const answer = JSON.parse(extended.stdout) as { extended_until: string; cull_at: string | null };
    expect(answer.cull_at).toBeNull();
    expect(Date.parse(answer.extended_until)).toBeGreaterThan(Date.now() + 30_000);
    expect(await server(name)).toMatchObject({ ready: true, cull_at: null, notice: null });
    // Past the time the warning had promised, it still runs; so does the exempt user's, never warned.
    await new Promise((r) => setTimeout(r, Math.max(0, Date.parse(warned.cull_at ?? '') - Date.now()) + 5_000));
    expect((await server(name))?.ready).toBe(true);
    expect((await server(exempt))?.ready).toBe(true);
    expect((await events(exempt)).filter((e) => e.kind.startsWith('session.cull'))).toEqual([]);
    expect((await events(name)).map((e) => e.kind)).toContain('session.extended');
    // A bad duration is refused naming the option (exit 2), and the API names the field.
    expect((await pool.cli(['extend', '--user', name, '--for', 'soon'])).code).toBe(2);
    const bad = await pool.fetch(`/hub/api/users/${name}/server/extend`, { method: 'POST', token: adminToken, body: JSON.stringify({ for: 'soon' }) });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ field: 'for' });
  }, 150_000);

  it('keeps an extension across a hub restart: the server is not culled before the extension ends', async () => {
    const { name } = await newUser('r');
    const extended = await pool.cli(['extend', '--user', name, '--for', '50s', '--json']);
    expect(extended.code, extended.stderr).toBe(0);
    const until = Date.parse((JSON.parse(extended.stdout) as { extended_until: string }).extended_until);
    // kill -9 the hub; `dspool up` starts a new one, which re-adopts the server. Without the extension kept in the
    // store it would see a server idle for longer than its timeout and stop it a warning's lead later.
    const deadline = Date.now() + 60_000;
    await pool.killHub(60_000);
    const restartedAt = await waitFor('the restarted hub to re-adopt the server', async () => ((await server(name))?.ready ? Date.now() : undefined), deadline - Date.now());
    expect(until - restartedAt).toBeGreaterThan((IDLE_TIMEOUT_S + 2) * 1000); // the test proves something only if so
    // Well past the idle timeout after the restart, and until shortly before the warning the extension allows: kept.
    await new Promise((r) => setTimeout(r, Math.max(0, until - WARN_BEFORE_S * 1000 - 3000 - Date.now())));
    expect((await server(name))?.ready).toBe(true);
    const afterRestart = (await events(name)).filter((e) => Date.parse(e.time) >= restartedAt - 1000);
    expect(afterRestart.filter((e) => e.kind === 'session.cull_warning' || e.kind === 'session.culled')).toEqual([]);
    // Once it ends, the usual warning and stop follow, never before the extension's end.
    await waitFor('the server to be culled after its extension', async () => (await server(name)) === undefined, (WARN_BEFORE_S + 40) * 1000);
    const culled = (await events(name)).find((e) => e.kind === 'session.culled');
    expect(Date.parse(culled?.time ?? '')).toBeGreaterThanOrEqual(until - 1000);
  }, 180_000);
});
