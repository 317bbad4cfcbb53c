// The gateway's origin rules against real servers on loopback (a fake hub at the process boundary): the Origin
// check's scheme, host and port; the admin warning without userHost; and user hosts with userHost.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { adminAck } from '../protocol/gateway.js';
import { createGateway, type Gateway } from './index.js';
import { startFakeHub, type FakeHub } from './testing.js';

const silent = pino({ level: 'silent' });

interface Answer {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

function request(port: number, path: string, options: { method?: string; headers?: Record<string, string> } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(check: () => boolean, timeoutMs = 5_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error('condition not met in time');
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const ALICE_COOKIE = 'alice-login-cookie';
const ADMIN_COOKIE = 'admin-login-cookie';
const ALICE_HOST_COOKIE = 'alice-host-cookie';

describe('gateway origins', () => {
  let hub: FakeHub;
  let backend: http.Server;
  let plain: Gateway;
  let hosted: Gateway;
  let plainPort = 0;
  let hostedPort = 0;

  beforeAll(async () => {
    backend = http.createServer((req, res) => res.end(JSON.stringify({ url: req.url, cookie: req.headers.cookie ?? null })));
    await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
    const target = `http://127.0.0.1:${(backend.address() as AddressInfo).port}`;
    hub = await startFakeHub({
      routes: ['alice', 'bob'].map((user) => ({ user, sessionId: `s-${user}`, instanceId: 'i-1', target, token: `t-${user}` })),
      identities: {
        [`cookie:${ALICE_COOKIE}`]: { user: 'alice', admin: false },
        [`cookie:${ADMIN_COOKIE}`]: { user: 'root', admin: true },
        [`cookie:${ALICE_HOST_COOKIE}`]: { user: 'alice', admin: false },
      },
    });
    plain = createGateway({ port: 0, hubUrl: hub.url, secret: hub.secret, log: silent });
    hosted = createGateway({ port: 0, hubUrl: hub.url, secret: hub.secret, log: silent, userHost: '{user}.pool.localhost' });
    plainPort = (await plain.listen()).port;
    hostedPort = (await hosted.listen()).port;
    await until(() => plain.hubLink.routeCount === 2 && hosted.hubLink.routeCount === 2);
  });

  afterAll(async () => {
    await plain?.close();
    await hosted?.close();
    await hub?.close();
    backend?.closeAllConnections();
    await new Promise<void>((resolve) => backend.close(() => resolve()));
  });

  it('refuses a cookie POST whose Origin differs in scheme or port, and one with no Origin, saying it is missing', async () => {
    const cookie = `dspool-session=${ALICE_COOKIE}`;
    const post = (origin?: string) =>
      request(plainPort, '/user/alice/api/contents', { method: 'POST', headers: { cookie, ...(origin === undefined ? {} : { origin }) } });
    expect((await post(`http://127.0.0.1:${plainPort}`)).status).toBe(200);
    expect((await post(`https://127.0.0.1:${plainPort}`)).status).toBe(403);
    expect((await post(`http://127.0.0.1:${plainPort + 1}`)).status).toBe(403);
    const missing = await post();
    expect(missing.status).toBe(403);
    expect(JSON.parse(missing.body).message).toMatch(/Origin header is missing/);
  });

  it('sends an admin\'s browser to the warning before another user\'s server, and lets it through with the acknowledgement', async () => {
    const cookie = `dspool-session=${ADMIN_COOKIE}`;
    const first = await request(plainPort, '/user/alice/tree?x=1', { headers: { cookie, accept: 'text/html' } });
    expect(first.status).toBe(302);
    expect(first.headers.location).toBe(`/hub/confirm/alice?next=${encodeURIComponent('/user/alice/tree?x=1')}`);
    const api = await request(plainPort, '/user/alice/api/status', { headers: { cookie } });
    expect(api.status).toBe(403);
    const forged = await request(plainPort, '/user/alice/tree', { headers: { cookie: `${cookie}; dspool-ack=forged`, accept: 'text/html' } });
    expect(forged.status).toBe(302);
    const ack = adminAck(hub.secret, 'alice', ADMIN_COOKIE);
    const through = await request(plainPort, '/user/alice/tree', { headers: { cookie: `${cookie}; dspool-ack=${ack}`, accept: 'text/html' } });
    expect(through.status).toBe(200);
    // The acknowledgement is for alice's server only.
    expect((await request(plainPort, '/user/bob/tree', { headers: { cookie: `${cookie}; dspool-ack=${ack}`, accept: 'text/html' } })).status).toBe(302);
    // A user opening their own server sees no warning.
    expect((await request(plainPort, '/user/alice/tree', { headers: { cookie: `dspool-session=${ALICE_COOKIE}`, accept: 'text/html' } })).status).toBe(200);
  });

  it('with userHost, sends /user/<name>/ on the hub\'s host to that user\'s host', async () => {
    const hubHost = `pool.localhost:${hostedPort}`;
    const browser = await request(hostedPort, '/user/alice/tree?x=1', { headers: { host: hubHost, accept: 'text/html', cookie: `dspool-session=${ALICE_COOKIE}` } });
    expect(browser.status).toBe(302);
    expect(browser.headers.location).toBe(`http://alice.pool.localhost:${hostedPort}/user/alice/tree?x=1`);
    const api = await request(hostedPort, '/user/alice/api/status', { headers: { host: hubHost, cookie: `dspool-session=${ALICE_COOKIE}` } });
    expect(api.status).toBe(404);
  });

  it('with userHost, a user host takes only its own cookie, never the hub\'s, and serves only that user\'s server', async () => {
    const host = `alice.pool.localhost:${hostedPort}`;
    const withHubCookie = await request(hostedPort, '/user/alice/tree', { headers: { host, accept: 'text/html', cookie: `dspool-session=${ALICE_COOKIE}` } });
    expect(withHubCookie.status).toBe(302);
    const authorize = new URL(withHubCookie.headers.location ?? '');
    expect(authorize.origin).toBe(`http://pool.localhost:${hostedPort}`);
    expect(authorize.pathname).toBe('/hub/user-host/authorize');
    expect(Object.fromEntries(authorize.searchParams)).toEqual({ user: 'alice', next: '/user/alice/tree' });

    const own = await request(hostedPort, '/user/alice/tree', { headers: { host, accept: 'text/html', cookie: `dspool-host-session=${ALICE_HOST_COOKIE}; other=1` } });
    expect(own.status).toBe(200);
    expect(JSON.parse(own.body).cookie).toBe('other=1');
    for (const path of ['/user/bob/tree', '/hub/api/users', '/hub/login', '/hub/internal/ssh/auth']) {
      const answer = await request(hostedPort, path, { headers: { host, cookie: `dspool-host-session=${ALICE_HOST_COOKIE}` } });
      expect(answer.status, path).toBe(404);
    }
    const wrongHost = await request(hostedPort, '/user/alice/api/contents', {
      method: 'POST', headers: { host, cookie: `dspool-host-session=${ALICE_HOST_COOKIE}`, origin: `http://pool.localhost:${hostedPort}` },
    });
    expect(wrongHost.status).toBe(403);
    const sameHost = await request(hostedPort, '/user/alice/api/contents', {
      method: 'POST', headers: { host, cookie: `dspool-host-session=${ALICE_HOST_COOKIE}`, origin: `http://${host}` },
    });
    expect(sameHost.status).toBe(200);
  });
});
