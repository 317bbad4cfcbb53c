// A real Jupyter Notebook 6 server behind the gateway: a kernel is started over HTTP and runs code over the
// proxied WebSocket, authenticated by the browser login cookie (the gateway injects the server's token).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import WebSocket from 'ws';
import { createGateway, type Gateway } from './index.js';
import { startFakeHub, type FakeHub } from './testing.js';

const JUPYTER = '/usr/bin/jupyter-notebook';
const available = existsSync(JUPYTER);
if (!available) console.log(`skipping the real Jupyter test: ${JUPYTER} is not installed (Debian package jupyter-notebook)`);

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function call(port: number, method: string, path: string, headers: Record<string, string>): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end(method === 'POST' ? '{}' : undefined);
  });
}

describe.skipIf(!available)('gateway in front of a real Jupyter Notebook server', () => {
  const user = 'nbuser';
  const cookie = 'nbuser-login-cookie';
  const jupyterToken = randomUUID();
  let dir: string;
  let notebook: ChildProcess;
  let hub: FakeHub;
  let gateway: Gateway;
  let port: number;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dspool-gw-jupyter-'));
    const notebookPort = await freePort();
    notebook = spawn(
      JUPYTER,
      [
        '--no-browser',
        '--ip=127.0.0.1',
        `--port=${notebookPort}`,
        `--NotebookApp.base_url=/user/${user}/`,
        `--notebook-dir=${dir}`,
        // CI runs as root; Jupyter refuses that without this flag.
        ...(process.getuid?.() === 0 ? ['--allow-root'] : []),
      ],
      {
        env: {
          PATH: '/usr/bin:/usr/local/bin:/bin',
          HOME: dir,
          JUPYTER_TOKEN: jupyterToken,
          JUPYTER_RUNTIME_DIR: join(dir, '.runtime'),
          JUPYTER_DATA_DIR: join(dir, '.data'),
          IPYTHONDIR: join(dir, '.ipython'),
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let log = '';
    notebook.stderr?.on('data', (chunk: Buffer) => (log += chunk.toString()));
    const deadline = Date.now() + 60_000;
    for (;;) {
      const status = await call(notebookPort, 'GET', `/user/${user}/api/status`, { authorization: `token ${jupyterToken}` }).catch(() => undefined);
      if (status?.status === 200) break;
      if (notebook.exitCode !== null || Date.now() > deadline) throw new Error(`jupyter-notebook did not start:\n${log}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    hub = await startFakeHub({
      routes: [{ user, sessionId: 's1', instanceId: 'i1', target: `http://127.0.0.1:${notebookPort}`, token: jupyterToken }],
      identities: { [`cookie:${cookie}`]: { user, admin: false } },
    });
    gateway = createGateway({ port: 0, hubUrl: hub.url, secret: hub.secret, log: pino({ level: 'silent' }) });
    port = (await gateway.listen()).port;
    await hub.linked();
    while (gateway.hubLink.routeCount === 0) await new Promise((resolve) => setTimeout(resolve, 20));
  });

  afterAll(async () => {
    await gateway?.close();
    await hub?.close();
    if (notebook?.pid !== undefined && notebook.exitCode === null) {
      const exited = new Promise((resolve) => notebook.once('exit', resolve));
      process.kill(notebook.pid, 'SIGTERM');
      const timer = setTimeout(() => notebook.pid !== undefined && notebook.exitCode === null && process.kill(notebook.pid, 'SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('starts a kernel and runs code through the gateway with only the login cookie', async () => {
    const origin = `http://127.0.0.1:${port}`;
    const headers = { cookie: `dspool-session=${cookie}`, origin };
    const started = await call(port, 'POST', `/user/${user}/api/kernels`, { ...headers, 'content-type': 'application/json' });
    expect(started.status).toBe(201);
    const kernelId = (JSON.parse(started.body) as { id: string }).id;

    const ws = new WebSocket(`ws://127.0.0.1:${port}/user/${user}/api/kernels/${kernelId}/channels`, { headers });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const msgId = randomUUID();
    const result = new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no execute_result within 30 s')), 30_000);
      ws.on('message', (data) => {
        const message = JSON.parse(data.toString()) as { msg_type: string; parent_header: { msg_id?: string }; content: { data?: Record<string, string> } };
        if (message.msg_type === 'execute_result' && message.parent_header.msg_id === msgId) {
          clearTimeout(timer);
          resolve(message.content.data?.['text/plain'] ?? '');
        }
      });
    });
    ws.send(
      JSON.stringify({
        header: { msg_id: msgId, username: user, session: randomUUID(), msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
        parent_header: {},
        metadata: {},
        content: { code: '6 * 7', silent: false, store_history: false, user_expressions: {}, allow_stdin: false },
        channel: 'shell',
        buffers: [],
      }),
    );
    expect(await result).toBe('42');
    ws.close();

    const foreign = await new Promise<number>((resolve) => {
      const evil = new WebSocket(`ws://127.0.0.1:${port}/user/${user}/api/kernels/${kernelId}/channels`, {
        headers: { ...headers, origin: 'http://evil.example' },
      });
      evil.once('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      evil.once('open', () => resolve(101));
      evil.once('error', () => undefined);
    });
    expect(foreign).toBe(403);

    const deleted = await call(port, 'DELETE', `/user/${user}/api/kernels/${kernelId}`, headers);
    expect(deleted.status).toBe(204);
  });
});
