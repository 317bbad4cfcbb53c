// The gateway's defences against held connections, against a real gateway and a fake hub on loopback: the
// header timeout (slowloris, silent connections), the connection cap (503), and a credential's scope and expiry.
import http from 'node:http';
import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import WebSocket, { WebSocketServer } from 'ws';
import { createGateway, type Gateway } from './index.js';
import { startFakeHub, type FakeHub } from './testing.js';

const silent = pino({ level: 'silent' });

/** Opens a raw TCP connection; resolves once connected. */
function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything the server sends until it closes the connection, and how long that took. */
function untilClosed(socket: net.Socket): Promise<{ text: string; afterMs: number }> {
  const start = Date.now();
  let text = '';
  socket.on('data', (d: Buffer) => (text += d.toString()));
  socket.on('error', () => undefined);
  return new Promise((resolve) => socket.once('close', () => resolve({ text, afterMs: Date.now() - start })));
}

function get(port: number, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
  });
}

describe('gateway limits', () => {
  let hub: FakeHub;
  let gateway: Gateway;
  let port: number;

  beforeEach(async () => {
    hub = await startFakeHub({
      identities: {
        'token:narrow': { user: 'alice', admin: false, servers: [] },
        'token:admin-narrow': { user: 'root', admin: true, servers: ['bob'] },
        'token:expiring': { user: 'alice', admin: false, servers: ['alice'], expiresAtMs: Date.now() + 1_500 },
      },
      routes: [{ user: 'alice', sessionId: 's-a', instanceId: 'i-1', target: 'http://127.0.0.1:9', token: 't' }],
    });
    gateway = createGateway({ hubUrl: hub.url, secret: hub.secret, port: 0, log: silent, headersTimeoutMs: 1_000, maxConnections: 20 });
    port = (await gateway.listen()).port;
    await hub.linked();
  });

  afterEach(async () => {
    await gateway.close();
    await hub.close();
  });

  it('closes a connection that sends its headers too slowly (with 408) and one that sends nothing', async () => {
    const slow = await connect(port);
    const silentOne = await connect(port);
    const slowClosed = untilClosed(slow);
    const silentClosed = untilClosed(silentOne);
    slow.write('GET /hub/ HTTP/1.1\r\nHost: x\r\n');
    const drip = setInterval(() => slow.writable && slow.write('X-Slow: 1\r\n'), 200);
    const [a, b] = await Promise.all([slowClosed, silentClosed]);
    clearInterval(drip);
    expect(a.text).toMatch(/^HTTP\/1\.1 408/);
    expect(a.afterMs).toBeLessThan(5_000);
    expect(b.afterMs).toBeLessThan(5_000);
  });

  it('answers 503 to a connection past the cap, and serves again once connections close', async () => {
    const held = await Promise.all(Array.from({ length: 20 }, () => connect(port)));
    const extra = await connect(port);
    const refused = await untilClosed(extra);
    expect(refused.text).toMatch(/^HTTP\/1\.1 503/);
    for (const socket of held) socket.destroy();
    await new Promise((r) => setTimeout(r, 200));
    expect((await get(port, '/hub/api/')).status).toBe(200);
  });

  it('refuses /user/<name>/ to a credential without access:servers on that user, even an admin\'s', async () => {
    expect((await get(port, '/user/alice/api', { authorization: 'token narrow' })).status).toBe(403);
    expect((await get(port, '/user/alice/api', { authorization: 'token admin-narrow' })).status).toBe(403);
  });

  it('stops honouring a cached identity at the credential\'s own expiry, not a cache TTL later', async () => {
    await get(port, '/user/alice/api', { authorization: 'token expiring' });
    expect(gateway.hubLink.cachedIdentity('token', 'expiring')).toMatchObject({ user: 'alice' });
    hub.identities.delete('token:expiring');
    await new Promise((r) => setTimeout(r, 1_700));
    expect(gateway.hubLink.cachedIdentity('token', 'expiring')).toBeUndefined();
    expect((await get(port, '/user/alice/api', { authorization: 'token expiring' })).status).toBe(401);
  });

  it('ends a proxied WebSocket when its token is revoked, and when its token expires', async () => {
    const backend = http.createServer();
    const wss = new WebSocketServer({ server: backend });
    wss.on('connection', (ws) => ws.on('message', (d) => ws.send(d)));
    await new Promise<void>((r) => backend.listen(0, '127.0.0.1', r));
    const target = `http://127.0.0.1:${(backend.address() as net.AddressInfo).port}`;
    hub.setRoute({ user: 'alice', sessionId: 's-a2', instanceId: 'i-1', target, token: 't' });
    hub.identities.set('token:revoked-soon', { user: 'alice', admin: false, servers: ['alice'] });
    hub.identities.set('token:keeps', { user: 'alice', admin: false, servers: ['alice'] });
    hub.identities.set('token:expires-soon', { user: 'alice', admin: false, servers: ['alice'], expiresAtMs: Date.now() + 1_500 });
    await new Promise((r) => setTimeout(r, 100));
    const open = async (token: string) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/user/alice/api/kernels/k/channels`, { headers: { authorization: `token ${token}` } });
      await new Promise<void>((resolve, reject) => {
        ws.once('open', () => resolve());
        ws.once('error', reject);
      });
      const closed = new Promise<number>((resolve) => ws.once('close', () => resolve(Date.now())));
      return { ws, closed };
    };
    try {
      const revoked = await open('revoked-soon');
      const kept = await open('keeps');
      const expiring = await open('expires-soon');
      hub.identities.delete('token:revoked-soon');
      const revokedAt = Date.now();
      hub.revoke('alice');
      expect((await revoked.closed) - revokedAt).toBeLessThan(1_000);
      expect((await expiring.closed) - revokedAt).toBeLessThan(3_000);
      expect(kept.ws.readyState).toBe(WebSocket.OPEN);
      const echoed = new Promise<string>((resolve) => kept.ws.once('message', (d) => resolve(String(d))));
      kept.ws.send('still here');
      expect(await echoed).toBe('still here');
      kept.ws.close();
    } finally {
      for (const client of wss.clients) client.terminate();
      wss.close();
      backend.closeAllConnections();
      await new Promise<void>((r) => backend.close(() => r()));
    }
  });
});
