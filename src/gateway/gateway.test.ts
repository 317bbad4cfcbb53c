// End-to-end behaviour of the gateway against real servers on loopback: a fake hub (WebSocket + HTTP) and real
// HTTP / WebSocket backends standing in for Jupyter servers.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import type { Route } from '../protocol/gateway.js';
import { createGateway, type Gateway } from './index.js';
import { startFakeHub, type FakeHub } from './testing.js';

const silent = pino({ level: 'silent' });

interface Backend {
  readonly port: number;
  readonly url: string;
  /** Requests seen, newest last. */
  readonly seen: { method: string; url: string; headers: http.IncomingHttpHeaders }[];
  close(): Promise<void>;
}

/** A stand-in for one user's Jupyter server: echoes requests as JSON and WebSocket messages back. */
async function startBackend(): Promise<Backend> {
  const seen: Backend['seen'] = [];
  const server = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': ['a=1', 'b=2'] });
      res.end(JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() }));
    });
  });
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws, req) => {
    seen.push({ method: 'WS', url: req.url ?? '', headers: req.headers });
    ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    port,
    url: `http://127.0.0.1:${port}`,
    seen,
    async close() {
      for (const ws of wss.clients) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
  json: () => any;
}

/** One request on its own connection; `send` writes the body itself (default: `body`, then end). */
function request(
  port: number,
  path: string,
  options: { method?: string; headers?: Record<string, string>; body?: string; send?: (req: http.ClientRequest) => void } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        const body = Buffer.concat(chunks).toString();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: () => JSON.parse(body) });
      });
      res.on('error', reject);
      res.on('close', () => {
        if (!res.complete) reject(new Error('response cut off'));
      });
    });
    req.on('error', reject);
    if (options.send) options.send(req);
    else req.end(options.body);
  });
}

/** Opens a WebSocket; resolves with it once open, or rejects with the HTTP status the server answered. */
function openWs(url: string, headers: Record<string, string> = {}): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers });
    ws.once('open', () => resolve(ws));
    ws.once('unexpected-response', (_req, res) => {
      reject(Object.assign(new Error(`status ${res.statusCode}`), { status: res.statusCode }));
      res.resume();
      ws.terminate();
    });
    ws.once('error', reject);
  });
}

function echo(ws: WebSocket, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    ws.once('message', (data) => resolve(data.toString()));
    ws.once('error', reject);
    ws.send(text);
  });
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const ALICE_TOKEN = 'alice-api-token';
const BOB_TOKEN = 'bob-api-token';
const ADMIN_TOKEN = 'admin-api-token';
const ALICE_COOKIE = 'alice-login-cookie';

function routeFor(user: string, backend: Backend, sessionId = `s-${user}`): Route {
  return { user, sessionId, instanceId: 'i-1', target: backend.url, token: `jupyter-token-of-${user}` };
}

describe('gateway', () => {
  let hub: FakeHub;
  let aliceServer: Backend;
  let bobServer: Backend;
  let gateway: Gateway;
  let port: number;
  let origin: string;

  beforeEach(async () => {
    aliceServer = await startBackend();
    bobServer = await startBackend();
    hub = await startFakeHub({
      routes: [routeFor('alice', aliceServer), routeFor('bob', bobServer)],
      identities: {
        [`token:${ALICE_TOKEN}`]: { user: 'alice', admin: false },
        [`token:${BOB_TOKEN}`]: { user: 'bob', admin: false },
        [`token:${ADMIN_TOKEN}`]: { user: 'root', admin: true },
        [`cookie:${ALICE_COOKIE}`]: { user: 'alice', admin: false },
      },
    });
    gateway = createGateway({ port: 0, hubUrl: hub.url, secret: hub.secret, log: silent, authTimeoutMs: 1_000, statsIntervalMs: 100 });
    port = (await gateway.listen()).port;
    origin = `http://127.0.0.1:${port}`;
    await until(() => gateway.hubLink.state === 'open' && gateway.hubLink.routeCount === 2);
  });

  afterEach(async () => {
    await gateway.close();
    await hub.close();
    await aliceServer.close();
    await bobServer.close();
  });

  it('forwards /hub paths to the hub as they are, with X-Forwarded headers', async () => {
    const answer = await request(port, '/hub/api/users?x=1', { headers: { authorization: 'token whatever', cookie: 'dspool-session=c1' } });
    expect(answer.status).toBe(200);
    expect(answer.headers['x-served-by']).toBe('fake-hub');
    const seen = answer.json();
    expect(seen.url).toBe('/hub/api/users?x=1');
    expect(seen.headers.authorization).toBe('token whatever');
    expect(seen.headers.cookie).toBe('dspool-session=c1');
    expect(seen.headers['x-forwarded-for']).toBe('127.0.0.1');
    expect(seen.headers['x-forwarded-proto']).toBe('http');
    expect(seen.headers['x-forwarded-host']).toBe(`127.0.0.1:${port}`);
  });

  it('keeps the hub out of reach for its internal routes, however the path is spelled', async () => {
    for (const path of ['/hub/internal/ssh/auth', '/hub//internal/ssh/locate', '/hub/%69nternal/ssh/auth', '/hub/INTERNAL/x']) {
      expect((await request(port, path, { method: 'POST' })).status, path).toBe(404);
    }
  });

  it('reports its request and error counters to the hub', async () => {
    await request(port, '/user/alice/api', { headers: { authorization: `token ${ALICE_TOKEN}` } });
    await aliceServer.close();
    await request(port, '/user/alice/api', { headers: { authorization: `token ${ALICE_TOKEN}` } });
    await until(() => (hub.stats?.requests ?? 0) >= 2 && (hub.stats?.errors ?? 0) >= 1);
    expect(hub.stats?.errors).toBe(1);
  });

  it('tells the hub about requests a person made, never about polling or reconnecting WebSockets', async () => {
    const headers = { authorization: `token ${ALICE_TOKEN}` };
    const polls = ['/user/alice/api/contents?type=directory', '/user/alice/api/kernels', '/user/alice/api/sessions', '/user/alice/api/terminals'];
    for (const path of polls) await request(port, path, { headers: { ...headers, 'sec-fetch-mode': 'cors' } });
    const ws = await openWs(`ws://127.0.0.1:${port}/user/alice/api/kernels/k1/channels`, headers);
    ws.close();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    expect(hub.activity).toEqual({});
    const before = Date.now();
    await request(port, '/user/bob/notebooks/a.ipynb', { headers: { authorization: `token ${BOB_TOKEN}`, 'sec-fetch-mode': 'navigate', accept: 'text/html' } });
    await request(port, '/user/alice/api/contents/a.ipynb', { method: 'PUT', headers, body: '{}' });
    await until(() => hub.activity.alice !== undefined && hub.activity.bob !== undefined, 5_000);
    expect(Date.parse(hub.activity.alice ?? '')).toBeGreaterThanOrEqual(before - 5);
  });

  it('redirects / to /hub/ and answers 404 elsewhere', async () => {
    const root = await request(port, '/');
    expect(root.status).toBe(302);
    expect(root.headers.location).toBe('/hub/');
    const other = await request(port, '/elsewhere');
    expect(other.status).toBe(404);
    expect(other.json()).toEqual({ status: 404, message: 'nothing here: /elsewhere' });
    expect((await request(port, '/user/Not_Valid/')).status).toBe(404);
  });

  it('asks API clients without credentials for them with 401 JSON', async () => {
    const answer = await request(port, '/user/alice/api/status');
    expect(answer.status).toBe(401);
    expect(answer.headers['content-type']).toBe('application/json');
    expect(answer.json().status).toBe(401);
    const wrong = await request(port, '/user/alice/api/status', { headers: { authorization: 'token nope' } });
    expect(wrong.status).toBe(401);
  });

  it('sends browsers without a login to /hub/login with the page they wanted', async () => {
    const answer = await request(port, '/user/alice/tree?x=1', { headers: { accept: 'text/html,*/*' } });
    expect(answer.status).toBe(302);
    expect(answer.headers.location).toBe(`/hub/login?next=${encodeURIComponent('/user/alice/tree?x=1')}`);
  });

  it('proxies a token-authenticated request to the user\'s server with the route token instead', async () => {
    const answer = await request(port, '/user/alice/api/contents?type=directory', { headers: { authorization: `token ${ALICE_TOKEN}` } });
    expect(answer.status).toBe(200);
    const seen = answer.json();
    expect(seen.url).toBe('/user/alice/api/contents?type=directory');
    expect(seen.headers.authorization).toBe('token jupyter-token-of-alice');
    expect(seen.headers.host).toBe(`127.0.0.1:${port}`);
    expect(answer.headers['set-cookie']).toEqual(['a=1', 'b=2']);
    const bearer = await request(port, '/user/alice/api', { headers: { authorization: `Bearer ${ALICE_TOKEN}` } });
    expect(bearer.status).toBe(200);
  });

  it('never passes the login cookie to the user\'s server but keeps the other cookies', async () => {
    const answer = await request(port, '/user/alice/api/status', {
      headers: { cookie: `_xsrf=abc; dspool-session=${ALICE_COOKIE}; theme=dark` },
    });
    expect(answer.status).toBe(200);
    const seen = answer.json();
    expect(seen.headers.cookie).toBe('_xsrf=abc; theme=dark');
    expect(seen.headers.authorization).toBe('token jupyter-token-of-alice');
    expect(JSON.stringify(seen.headers)).not.toContain(ALICE_COOKIE);
  });

  it('streams request bodies to the user\'s server', async () => {
    const body = JSON.stringify({ type: 'notebook', content: 'x'.repeat(200_000) });
    const answer = await request(port, '/user/alice/api/contents/a.ipynb', {
      method: 'PUT',
      headers: { authorization: `token ${ALICE_TOKEN}`, 'content-type': 'application/json' },
      body,
    });
    expect(answer.status).toBe(200);
    expect(answer.json().body).toBe(body);
  });

  it('streams a chunked request body sent after Expect: 100-continue', async () => {
    const answer = await request(port, '/user/alice/api/contents/b.txt', {
      method: 'PUT',
      headers: { authorization: `token ${ALICE_TOKEN}`, 'transfer-encoding': 'chunked', expect: '100-continue' },
      send: (req) =>
        req.on('continue', () => {
          req.write('one,');
          setTimeout(() => req.end('two'), 20);
        }),
    });
    expect(answer.status).toBe(200);
    expect(answer.json().body).toBe('one,two');
  });

  it('streams a large answer to a slow reader whole, and ends the backend request when the client leaves', async () => {
    const size = 24 * 1024 * 1024;
    const block = Buffer.alloc(64 * 1024, 7);
    let backendClosed = false;
    const big = http.createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', ...(req.url?.includes('forever') ? {} : { 'content-length': String(size) }) });
      res.on('close', () => (backendClosed = req.url?.includes('forever') === true || backendClosed));
      let sent = 0;
      const pump = (): void => {
        while (req.url?.includes('forever') || sent < size) {
          sent += block.length;
          if (!res.write(block)) return void res.once('drain', pump);
          if (res.destroyed) return;
        }
        res.end();
      };
      pump();
    });
    await new Promise<void>((resolve) => big.listen(0, '127.0.0.1', resolve));
    try {
      hub.setRoute({ ...routeFor('alice', aliceServer, 's-big'), target: `http://127.0.0.1:${(big.address() as AddressInfo).port}` });
      await until(() => gateway.hubLink.route('alice')?.route.sessionId === 's-big');
      // A reader that pauses: the gateway must hold back instead of buffering the whole answer.
      const received = await new Promise<number>((resolve, reject) => {
        http.get({ host: '127.0.0.1', port, path: '/user/alice/files/big', agent: false, headers: { authorization: `token ${ALICE_TOKEN}` } }, (res) => {
          let total = 0;
          res.on('data', (chunk: Buffer) => {
            total += chunk.length;
            if (total % (4 * 1024 * 1024) < chunk.length) {
              res.pause();
              setTimeout(() => res.resume(), 30);
            }
          });
          res.on('end', () => resolve(total));
          res.on('error', reject);
        }).on('error', reject);
      });
      expect(received).toBe(size);
      // A client that leaves in the middle of an endless answer: the backend sees its request end.
      await new Promise<void>((resolve, reject) => {
        const req = http.get({ host: '127.0.0.1', port, path: '/user/alice/files/forever', agent: false, headers: { authorization: `token ${ALICE_TOKEN}` } }, (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        });
        req.on('error', (error) => (req.destroyed ? undefined : reject(error)));
      });
      await until(() => backendClosed);
      expect(backendClosed).toBe(true);
    } finally {
      big.closeAllConnections();
      await new Promise<void>((resolve) => big.close(() => resolve()));
    }
  });

  it('refuses alice on bob\'s server with 403 whether or not it runs, and lets an admin through', async () => {
    const denied = await request(port, '/user/bob/api/status', { headers: { authorization: `token ${ALICE_TOKEN}` } });
    expect(denied.status).toBe(403);
    const deniedMissing = await request(port, '/user/carol/api/status', { headers: { authorization: `token ${ALICE_TOKEN}` } });
    expect(deniedMissing.status).toBe(403);
    expect(deniedMissing.body).not.toContain('not running');
    const admin = await request(port, '/user/bob/api/status', { headers: { authorization: `token ${ADMIN_TOKEN}` } });
    expect(admin.status).toBe(200);
    expect(admin.json().headers.authorization).toBe('token jupyter-token-of-bob');
  });

  it('refuses cookie-authenticated POSTs from a foreign origin and allows same-origin and token ones', async () => {
    const cookie = `dspool-session=${ALICE_COOKIE}`;
    const foreign = await request(port, '/user/alice/api/kernels', { method: 'POST', headers: { cookie, origin: 'http://evil.example' } });
    expect(foreign.status).toBe(403);
    expect(foreign.json().message).toContain('http://evil.example');
    const same = await request(port, '/user/alice/api/kernels', { method: 'POST', headers: { cookie, origin } });
    expect(same.status).toBe(200);
    const get = await request(port, '/user/alice/api/kernels', { headers: { cookie, origin: 'http://evil.example' } });
    expect(get.status).toBe(200);
    const token = await request(port, '/user/alice/api/kernels', {
      method: 'POST',
      headers: { authorization: `token ${ALICE_TOKEN}`, origin: 'http://evil.example' },
    });
    expect(token.status).toBe(200);
  });

  it('allows a configured extra origin', async () => {
    const extra = createGateway({ port: 0, hubUrl: hub.url, secret: hub.secret, log: silent, allowedOrigins: ['https://notebooks.example.org'] });
    try {
      const extraPort = (await extra.listen()).port;
      await until(() => extra.hubLink.routeCount === 2);
      const answer = await request(extraPort, '/user/alice/api/kernels', {
        method: 'POST',
        headers: { cookie: `dspool-session=${ALICE_COOKIE}`, origin: 'https://notebooks.example.org' },
      });
      expect(answer.status).toBe(200);
    } finally {
      await extra.close();
    }
  });

  it('refuses a cookie-authenticated WebSocket from a foreign origin and echoes through a same-origin one', async () => {
    const cookie = `dspool-session=${ALICE_COOKIE}`;
    const wsUrl = `ws://127.0.0.1:${port}/user/alice/api/kernels/k1/channels`;
    await expect(openWs(wsUrl, { cookie, origin: 'http://evil.example' })).rejects.toMatchObject({ status: 403 });
    const ws = await openWs(wsUrl, { cookie, origin });
    expect(await echo(ws, 'hello')).toBe('hello');
    const seen = aliceServer.seen.at(-1);
    expect(seen?.method).toBe('WS');
    expect(seen?.headers.cookie).toBeUndefined();
    expect(seen?.headers.authorization).toBe('token jupyter-token-of-alice');
    ws.close();
    const tokenWs = await openWs(wsUrl, { authorization: `token ${ALICE_TOKEN}`, origin: 'http://evil.example' });
    expect(await echo(tokenWs, 'x'.repeat(100_000))).toHaveLength(100_000);
    tokenWs.close();
  });

  it('sends browsers to /hub/user/<name>/… when the server is not running and API clients get 503 JSON', async () => {
    hub.unroute('alice', 's-alice');
    await until(() => gateway.hubLink.route('alice') === undefined);
    const browser = await request(port, '/user/alice/tree/x?y=1', { headers: { cookie: `dspool-session=${ALICE_COOKIE}`, accept: 'text/html' } });
    expect(browser.status).toBe(302);
    expect(browser.headers.location).toBe('/hub/user/alice/tree/x?y=1');
    const api = await request(port, '/user/alice/api/status', { headers: { authorization: `token ${ALICE_TOKEN}` } });
    expect(api.status).toBe(503);
    expect(api.json()).toEqual({
      status: 503,
      message: "alice's server is not running; start it with POST /hub/api/users/alice/server",
    });
  });

  it('answers 502 with the reason when the user\'s server is down, as HTML for browsers', async () => {
    await aliceServer.close();
    const api = await request(port, '/user/alice/api/status', { headers: { authorization: `token ${ALICE_TOKEN}` } });
    expect(api.status).toBe(502);
    expect(api.json().message).toBe("alice's server did not answer (ECONNREFUSED)");
    const page = await request(port, '/user/alice/tree', { headers: { cookie: `dspool-session=${ALICE_COOKIE}`, accept: 'text/html' } });
    expect(page.status).toBe(502);
    expect(page.headers['content-type']).toContain('text/html');
    expect(page.body).toContain('did not answer');
    expect(page.body).not.toContain('    at ');
    aliceServer = await startBackend();
  });

  it('cuts the client off when the user\'s server dies mid-response, and keeps serving', async () => {
    const dying = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-length': '1000' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 20);
    });
    await new Promise<void>((resolve) => dying.listen(0, '127.0.0.1', resolve));
    try {
      hub.setRoute({ ...routeFor('alice', aliceServer, 's-dying'), target: `http://127.0.0.1:${(dying.address() as AddressInfo).port}` });
      await until(() => gateway.hubLink.route('alice')?.route.sessionId === 's-dying');
      await expect(request(port, '/user/alice/api/status', { headers: { authorization: `token ${ALICE_TOKEN}` } })).rejects.toThrow();
      const other = await request(port, '/user/bob/api/status', { headers: { authorization: `token ${BOB_TOKEN}` } });
      expect(other.status).toBe(200);
    } finally {
      dying.closeAllConnections();
      await new Promise<void>((resolve) => dying.close(() => resolve()));
    }
  });

  it('applies route changes the hub pushes while running, and ignores an unroute for an old session', async () => {
    const other = await startBackend();
    try {
      hub.setRoute(routeFor('alice', other, 's-new'));
      await until(() => gateway.hubLink.route('alice')?.route.sessionId === 's-new');
      const answer = await request(port, '/user/alice/api/status', { headers: { authorization: `token ${ALICE_TOKEN}` } });
      expect(answer.status).toBe(200);
      expect(other.seen).toHaveLength(1);
      hub.unroute('alice', 's-alice');
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(gateway.hubLink.route('alice')?.route.sessionId).toBe('s-new');
    } finally {
      await other.close();
    }
  });

  it('keeps an open WebSocket and known routes working while the hub restarts', async () => {
    const ws = await openWs(`ws://127.0.0.1:${port}/user/alice/api/kernels/k1/channels`, { authorization: `token ${ALICE_TOKEN}` });
    expect(await echo(ws, 'before')).toBe('before');
    const hubPort = hub.port;
    const { routes, identities } = hub;
    await hub.close();
    await until(() => gateway.hubLink.state !== 'open');
    expect(await echo(ws, 'during')).toBe('during');
    const cached = await request(port, '/user/alice/api/status', { headers: { authorization: `token ${ALICE_TOKEN}` } });
    expect(cached.status).toBe(200);
    const uncached = await request(port, '/user/bob/api/status', { headers: { authorization: `token ${BOB_TOKEN}` } });
    expect(uncached.status).toBe(503);
    expect(uncached.json().message).toContain('hub unavailable');
    hub = await startFakeHub({ port: hubPort, routes: [...routes.values()], identities: Object.fromEntries(identities) });
    await until(() => gateway.hubLink.state === 'open', 10_000);
    expect(await echo(ws, 'after')).toBe('after');
    const bob = await request(port, '/user/bob/api/status', { headers: { authorization: `token ${BOB_TOKEN}` } });
    expect(bob.status).toBe(200);
    ws.close();
  });

  it('keeps redialling a hub that refuses its secret, answering 503 for unknown credentials meanwhile', async () => {
    const wrong = createGateway({ port: 0, hubUrl: hub.url, secret: 'not-the-secret', log: silent });
    try {
      const wrongPort = (await wrong.listen()).port;
      const states = new Set<string>();
      wrong.hubLink.on('state', (state) => states.add(state));
      await until(() => states.has('backoff') && states.has('connecting'));
      expect(wrong.hubLink.state).not.toBe('open');
      const answer = await request(wrongPort, '/user/alice/api/status', { headers: { authorization: `token ${ALICE_TOKEN}` } });
      expect(answer.status).toBe(503);
    } finally {
      await wrong.close();
    }
  });

  it('answers 503 instead of hanging when the hub does not answer a lookup', async () => {
    hub.answerAuth = false;
    const started = Date.now();
    const answer = await request(port, '/user/bob/api/status', { headers: { authorization: `token ${BOB_TOKEN}` } });
    expect(answer.status).toBe(503);
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('caches identities, asks once for concurrent requests, and forgets them on revoke', async () => {
    const headers = { authorization: `token ${ALICE_TOKEN}` };
    const answers = await Promise.all(Array.from({ length: 10 }, () => request(port, '/user/alice/api/status', { headers })));
    expect(answers.every((a) => a.status === 200)).toBe(true);
    await request(port, '/user/alice/api/status', { headers });
    expect(hub.lookups.get(`token:${ALICE_TOKEN}`)).toBe(1);
    hub.revoke('bob');
    await new Promise((resolve) => setTimeout(resolve, 50));
    await request(port, '/user/alice/api/status', { headers });
    expect(hub.lookups.get(`token:${ALICE_TOKEN}`)).toBe(1);
    hub.revoke('alice');
    hub.identities.delete(`token:${ALICE_TOKEN}`);
    await until(() => gateway.hubLink.cachedIdentity('token', ALICE_TOKEN) === undefined);
    const after = await request(port, '/user/alice/api/status', { headers });
    expect(after.status).toBe(401);
    expect(hub.lookups.get(`token:${ALICE_TOKEN}`)).toBe(2);
  });

  it('closes twice without error and ends proxied WebSockets', async () => {
    const ws = await openWs(`ws://127.0.0.1:${port}/user/alice/api/kernels/k1/channels`, { authorization: `token ${ALICE_TOKEN}` });
    const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
    const first = gateway.close();
    expect(gateway.close()).toBe(first);
    await first;
    await closed;
    expect(gateway.state).toBe('closed');
    expect(gateway.hubLink.state).toBe('closed');
    await expect(gateway.listen()).rejects.toMatchObject({ name: 'InvalidStateError' });
  });
});
