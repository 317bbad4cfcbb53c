import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readlinkSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_ENV, INSTANCE_HEADER, type AgentSettings, type AgentUser } from '../protocol/agent.js';
import { removeAccount } from './account.js';
import { userPaths } from './layout.js';
import { FakeHub, pidAlive, testSettings, throwawayUser, traversableTempDir, type ReceivedMessage } from './testing.js';

const AGENT_MAIN = fileURLToPath(new URL('../../dist/agent/main.js', import.meta.url));
const JOIN_TOKEN = 'join-token-abcdefghijklmnop';
const SERVER_TOKEN = 'server-token-0123456789abcdef';

type Hello = Extract<ReceivedMessage, { type: 'hello' }>;
type Heartbeat = Extract<ReceivedMessage, { type: 'heartbeat' }>;
type Reply = Extract<ReceivedMessage, { type: 'reply' }>;

interface RunningAgent {
  child: ChildProcess;
  output: () => string;
}

describe('agent process', () => {
  let root: string;
  let settings: AgentSettings;
  let hub: FakeHub;
  const users: AgentUser[] = [];
  const agents: ChildProcess[] = [];

  function newUser(): AgentUser {
    const user = throwawayUser();
    users.push(user);
    return user;
  }

  function startAgent(env: NodeJS.ProcessEnv = {}): RunningAgent {
    const child = spawn(process.execPath, [AGENT_MAIN], {
      env: {
        PATH: process.env.PATH,
        [AGENT_ENV.hubUrl]: hub.url,
        [AGENT_ENV.instanceId]: 'i-test',
        [AGENT_ENV.joinToken]: JOIN_TOKEN,
        [AGENT_ENV.settings]: JSON.stringify(settings),
        ...env,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    agents.push(child);
    let output = '';
    child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    return { child, output: () => output };
  }

  async function stopAgent(child: ChildProcess): Promise<number | null> {
    if (child.exitCode !== null) return child.exitCode;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    return code;
  }

  function startParams(user: AgentUser, sessionId: string): Record<string, unknown> {
    return { sessionId, user, baseUrl: `/user/${user.name}/`, token: SERVER_TOKEN };
  }

  beforeAll(() => {
    root = traversableTempDir('dspool-agent-');
    settings = testSettings(root, { logLevel: 'info' });
  });

  afterEach(async () => {
    for (const child of agents.splice(0)) await stopAgent(child);
    await hub?.stop();
  });

  afterAll(async () => {
    for (const user of users) await removeAccount(user.name).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  it('exits with code 2 and one clear line when its environment is incomplete', async () => {
    hub = await FakeHub.start();
    const agent = startAgent({ [AGENT_ENV.settings]: '{"address": 1}', [AGENT_ENV.joinToken]: '' });
    const [code] = (await once(agent.child, 'exit')) as [number];
    expect(code).toBe(2);
    const lines = agent.output().trim().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^dspool agent: invalid agent environment: DSPOOL_JOIN_TOKEN is not set; DSPOOL_AGENT_SETTINGS\.address/);
  });

  it('joins the hub with its token and instance header, says hello with capacity and checks, then heartbeats', async () => {
    hub = await FakeHub.start();
    const agent = startAgent();
    const hello = (await hub.waitFor((m) => m.type === 'hello')) as Hello;
    expect(hub.handshakes[0]?.authorization).toBe(`Bearer ${JOIN_TOKEN}`);
    expect(hub.handshakes[0]?.[INSTANCE_HEADER]).toBe('i-test');
    expect(hello).toMatchObject({
      instanceId: 'i-test',
      address: '127.0.0.1',
      isolation: process.getuid?.() === 0,
      checks: { share: true, jupyter: true },
      sshPort: null,
      servers: [],
    });
    expect(hello.capacity.cpus).toBeGreaterThan(0);
    expect(hello.capacity.memoryBytes).toBeGreaterThan(0);
    const beat = (await hub.waitFor((m) => m.type === 'heartbeat')) as Heartbeat;
    expect(beat.load.memoryTotalBytes).toBe(hello.capacity.memoryBytes);
    expect(agent.output()).not.toContain(JOIN_TOKEN);
  });

  it('answers bad params with bad_request, an unknown session with stopped false, and ignores invalid frames', async () => {
    hub = await FakeHub.start();
    const agent = startAgent();
    await hub.waitFor((m) => m.type === 'hello');
    hub.sendRaw('not json');
    hub.sendRaw(JSON.stringify({ type: 'request', id: 'x', method: 'explode' }));
    const bad = await hub.request('startServer', { sessionId: 's', user: { name: 'x' }, baseUrl: '/', token: 'short' });
    expect(bad).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    const traversal = await hub.request('startServer', startParams({ name: '../../etc', uid: 60001, gid: 60001 }, 's2'));
    expect(traversal).toMatchObject({ ok: false, error: { code: 'bad_request' } });
    const system = await hub.request('startServer', startParams({ name: 'root', uid: 0, gid: 0 }, 's3'));
    expect(system).toMatchObject({ ok: false, error: { code: 'account_failed' } });
    const unknown = await hub.request('stopServer', { sessionId: 'nope' });
    expect(unknown).toMatchObject({ ok: true, result: { stopped: false } });
    expect(agent.child.exitCode).toBeNull();
    // stderr and the WebSocket are different pipes: give the log line a moment to arrive.
    for (let i = 0; i < 50 && !/invalid frame from the hub ignored/.test(agent.output()); i++) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(agent.output()).toMatch(/invalid frame from the hub ignored/);
  });

  it('starts a real Jupyter server with progress, reports it, survives a hub restart and stops it on request', async () => {
    hub = await FakeHub.start();
    const agent = startAgent();
    await hub.waitFor((m) => m.type === 'hello');
    const user = newUser();
    const reply = (await hub.request('startServer', startParams(user, 'sess-1'), 30_000)) as Reply;
    expect(reply.ok).toBe(true);
    const result = (reply as Extract<Reply, { ok: true }>).result as { url: string; pid: number };
    expect(result.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const percents = hub.messages.filter((m) => m.type === 'progress' && m.sessionId === 'sess-1').map((m) => (m as { percent: number }).percent);
    expect(percents).toEqual([10, 30, 50, 70]);
    expect(readlinkSync(userPaths(settings, user.name).link)).toBe(userPaths(settings, user.name).shareNotebooks);
    const status = await fetch(`${result.url}/user/${user.name}/api/status`, { headers: { Authorization: `token ${SERVER_TOKEN}` } });
    expect(status.status).toBe(200);
    // The same request again (a hub that lost the reply) gets the same server.
    const again = (await hub.request('startServer', startParams(user, 'sess-1'))) as Extract<Reply, { ok: true }>;
    expect(again.result).toEqual(result);

    // Hub restart: the agent reconnects and its hello re-adopts the server.
    const port = hub.port;
    await hub.stop();
    await hub.listen(port);
    const hello = (await hub.waitFor((m) => m.type === 'hello' && m.connection === 2)) as Hello;
    expect(hello.servers).toEqual([expect.objectContaining({ sessionId: 'sess-1', user: user.name, state: 'running', url: result.url, pid: result.pid })]);
    expect(pidAlive(result.pid)).toBe(true);

    const stopped = await hub.request('stopServer', { sessionId: 'sess-1' });
    expect(stopped).toMatchObject({ ok: true, result: { stopped: true } });
    expect(pidAlive(result.pid)).toBe(false);
    const beat = (await hub.waitFor((m) => m.type === 'heartbeat' && m.connection === 2 && m.servers.length === 0)) as Heartbeat;
    expect(beat.servers).toEqual([]);
    expect(agent.output()).not.toContain(SERVER_TOKEN);
  });

  it('tells the hub when a server dies on its own', async () => {
    hub = await FakeHub.start();
    startAgent();
    await hub.waitFor((m) => m.type === 'hello');
    const reply = (await hub.request('startServer', startParams(newUser(), 'sess-die'), 30_000)) as Extract<Reply, { ok: true }>;
    const { pid } = reply.result as { pid: number };
    process.kill(pid, 'SIGKILL');
    const exited = await hub.waitFor((m) => m.type === 'serverExited' && m.sessionId === 'sess-die');
    expect(exited).toMatchObject({ code: null, signal: 'SIGKILL' });
  });

  it('stops every server and exits 0 on SIGTERM', async () => {
    hub = await FakeHub.start();
    const agent = startAgent();
    await hub.waitFor((m) => m.type === 'hello');
    const reply = (await hub.request('startServer', startParams(newUser(), 'sess-term'), 30_000)) as Extract<Reply, { ok: true }>;
    const { pid } = reply.result as { pid: number };
    expect(await stopAgent(agent.child)).toBe(0);
    expect(pidAlive(pid)).toBe(false);
  });

  it('answers shutdown with the number of servers stopped, then exits 0', async () => {
    hub = await FakeHub.start();
    const agent = startAgent();
    await hub.waitFor((m) => m.type === 'hello');
    const reply = (await hub.request('startServer', startParams(newUser(), 'sess-shut'), 30_000)) as Extract<Reply, { ok: true }>;
    const { pid } = reply.result as { pid: number };
    const exited = once(agent.child, 'exit');
    const shutdown = await hub.request('shutdown', {});
    expect(shutdown).toMatchObject({ ok: true, result: { stopped: 1 } });
    const [code] = (await exited) as [number];
    expect(code).toBe(0);
    expect(pidAlive(pid)).toBe(false);
  });
});

