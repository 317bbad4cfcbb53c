// Helpers shared by the agent's and the local provider's tests: temp dirs, throwaway users, settings.
import { randomInt } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createServer as createHttpServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { WebSocket, WebSocketServer } from 'ws';
import { AGENT_PATH, agentMessageSchema, type AgentMessage, type AgentSettings, type AgentUser } from '../protocol/agent.js';

/**
 * Debian's Python is there (the fork server and Jupyter run on it): suites that need it skip without.
 *
 * @internal for tests
 * @example
 * describe.skipIf(!hasDebianPython)('ForkServer', () => { … });
 */
export const hasDebianPython = existsSync('/usr/bin/python3');

/**
 * A fresh temp directory that other accounts can traverse (mkdtemp makes 0700).
 *
 * @internal for tests
 * @example
 * const dir = traversableTempDir('dspool-agent-');
 */
export function traversableTempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  chmodSync(dir, 0o755);
  return dir;
}

/**
 * A user with a unique name (`t<random>`) and a random high UID/GID, unlikely to collide with real accounts.
 *
 * @internal for tests
 * @example
 * const user = throwawayUser(); // { name: 't4821937', uid: 61234, gid: 61234 }
 */
export function throwawayUser(): AgentUser {
  const id = 60_000 + randomInt(0, 5_000_000);
  return { name: `t${randomInt(1_000_000, 9_999_999)}`, uid: id, gid: id };
}

/**
 * Agent settings for a test under `root`: scratch and share directories made, Debian's Jupyter.
 *
 * @internal for tests
 * @example
 * const settings = testSettings(traversableTempDir('x-'));
 */
export function testSettings(root: string, overrides: Partial<AgentSettings> = {}): AgentSettings {
  const scratchDir = path.join(root, 'scratch');
  const sharePath = path.join(root, 'share');
  mkdirSync(scratchDir, { recursive: true, mode: 0o755 });
  mkdirSync(sharePath, { recursive: true, mode: 0o755 });
  return {
    address: '127.0.0.1',
    scratchDir,
    sharePath,
    jupyter: { command: ['/usr/bin/jupyter-notebook'], args: [], startTimeoutMs: 30_000, path: '/usr/bin:/usr/local/bin:/bin:/usr/sbin:/sbin' },
    logLevel: 'warn',
    ssh: null,
    ...overrides,
  };
}

export { pidAlive } from '../lib/process.js';


/** A message the fake hub received, parsed. */
export type ReceivedMessage = AgentMessage & { readonly connection: number };

/**
 * A stand-in for the hub at the process boundary: accepts agents on `AGENT_PATH`, records what they send,
 * welcomes them and sends requests. Can be stopped and started again on the same port (a hub restart).
 *
 * @internal for tests
 * @example
 * const hub = await FakeHub.start();
 * const hello = await hub.waitFor((m) => m.type === 'hello');
 * const reply = await hub.request('stopServer', { sessionId: 'x' });
 */
export class FakeHub {
  readonly messages: ReceivedMessage[] = [];
  readonly handshakes: IncomingHttpHeaders[] = [];
  readonly invalid: string[] = [];
  private readonly sockets = new Set<WebSocket>();
  private server: Server | undefined;
  private wss: WebSocketServer | undefined;
  private nextId = 1;
  private connections = 0;
  private listeners: Array<() => void> = [];
  port = 0;

  private constructor(private readonly heartbeatIntervalMs: number) {}

  /** `host`: where it listens (default loopback; a test namespace's link address for agents on other "hosts"). */
  static async start(options: { port?: number; heartbeatIntervalMs?: number; host?: string } = {}): Promise<FakeHub> {
    const hub = new FakeHub(options.heartbeatIntervalMs ?? 200);
    hub.host = options.host ?? '127.0.0.1';
    await hub.listen(options.port ?? 0);
    return hub;
  }

  private host = '127.0.0.1';

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  /**
   * Resolves with the credentials the agent of `instanceId` dialed with (first handshake), for conformance tests.
   */
  async awaitHandshake(instanceId: string, timeoutMs = 60_000): Promise<{ authorization: string; instance: string }> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const found = this.handshakes.find((h) => h['x-dspool-instance'] === instanceId);
      if (found) return { authorization: String(found.authorization), instance: instanceId };
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`no agent of ${instanceId} dialed the fake hub within ${timeoutMs} ms`);
  }

  /** The socket of the most recent connection. */
  get socket(): WebSocket | undefined {
    return [...this.sockets].at(-1);
  }

  async listen(port: number): Promise<void> {
    const server = createHttpServer();
    const wss = new WebSocketServer({ noServer: true });
    server.on('upgrade', (request, socket, head) => {
      if (request.url !== AGENT_PATH) {
        socket.destroy();
        return;
      }
      this.handshakes.push(request.headers);
      wss.handleUpgrade(request, socket, head, (ws) => this.accept(ws));
    });
    await new Promise<void>((resolve) => server.listen(port, this.host, resolve));
    const address = server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
    this.server = server;
    this.wss = wss;
  }

  private accept(ws: WebSocket): void {
    const connection = ++this.connections;
    this.sockets.add(ws);
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('message', (data) => {
      const parsed = agentMessageSchema.safeParse(JSON.parse(data.toString()));
      if (!parsed.success) {
        this.invalid.push(data.toString());
        return;
      }
      if (parsed.data.type === 'hello') ws.send(JSON.stringify({ type: 'welcome', heartbeatIntervalMs: this.heartbeatIntervalMs }));
      this.messages.push({ ...parsed.data, connection });
      for (const listener of this.listeners) listener();
    });
  }

  /** Resolves with the first message (already received or coming) that matches, or rejects after `timeoutMs`. */
  waitFor<T extends ReceivedMessage>(predicate: (message: ReceivedMessage) => message is T, timeoutMs?: number): Promise<T>;
  waitFor(predicate: (message: ReceivedMessage) => boolean, timeoutMs?: number): Promise<ReceivedMessage>;
  waitFor(predicate: (message: ReceivedMessage) => boolean, timeoutMs = 15_000): Promise<ReceivedMessage> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.messages.find(predicate);
        if (!found) return false;
        cleanup();
        resolve(found);
        return true;
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no matching message within ${timeoutMs} ms; got ${this.messages.map((m) => m.type).join(', ')}`));
      }, timeoutMs);
      const cleanup = (): void => {
        clearTimeout(timer);
        this.listeners = this.listeners.filter((l) => l !== listener);
      };
      const listener = (): void => {
        check();
      };
      this.listeners.push(listener);
      check();
    });
  }

  /** Sends a raw frame to the most recent connection. */
  sendRaw(frame: string): void {
    this.socket?.send(frame);
  }

  /** Sends a request and resolves with the agent's reply. */
  async request(method: string, params: unknown, timeoutMs?: number): Promise<Extract<AgentMessage, { type: 'reply' }>> {
    const id = this.nextId++;
    this.sendRaw(JSON.stringify({ type: 'request', id, method, params }));
    const reply = await this.waitFor((m) => m.type === 'reply' && m.id === id, timeoutMs);
    return reply as Extract<AgentMessage, { type: 'reply' }>;
  }

  /** Stops listening and drops every agent connection (a hub crash); `listen(port)` starts again. */
  async stop(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.wss?.close();
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  }
}
