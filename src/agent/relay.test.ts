import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TlsPinError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { selfSignedIdentity } from '../lib/tls.js';
import { RelayPools, relayConnect, type RelayedServer } from '../gateway/relay.js';
import { parseRelayUrl } from '../protocol/relay.js';
import { startRelay, type ServerRelay } from './relay.js';

const log = createLogger('relay-test', 'silent');
const TOKEN = 'a'.repeat(43);

/** A real HTTP server on loopback standing in for a user's Jupyter: counts the connections it gets. */
let backend: http.Server;
let backendPort = 0;
let backendConnections = 0;
let otherPort = 0;
let other: http.Server;
let relay: ServerRelay;

beforeAll(async () => {
  backend = http.createServer((req, res) => res.end(`server saw ${req.method} ${req.url} ${req.headers.authorization ?? ''}`));
  backend.on('connection', () => backendConnections++);
  await new Promise<void>((resolve) => backend.listen(0, '127.0.0.1', resolve));
  backendPort = (backend.address() as AddressInfo).port;
  // Something else on the instance's loopback the relay must never reach.
  other = http.createServer((_req, res) => res.end('not a server of the pool'));
  await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
  otherPort = (other.address() as AddressInfo).port;
  relay = await startRelay({ address: '127.0.0.1', tokenOf: (port) => (port === backendPort ? TOKEN : undefined), log, preambleTimeoutMs: 2_000 });
});

afterAll(async () => {
  await relay.close();
  backend.close();
  other.close();
});

function target(serverPort: number, token: string, fingerprint = relay.fingerprint): RelayedServer {
  return { relay: { host: '127.0.0.1', relayPort: relay.port, serverPort, fingerprint }, token };
}

/** One GET through the relay on a fresh connection; the answer's status and body. */
function get(server: RelayedServer, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const request = http.request({
      host: '127.0.0.1', path, headers: { authorization: `token ${server.token}` },
      createConnection: ((_o: unknown, cb: (error: Error | null, socket?: Socket) => void) => relayConnect(server, cb)) as unknown as http.RequestOptions['createConnection'],
    }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

describe('the agent\'s TLS relay', () => {
  it('names each server by a URL that carries the relay\'s address, port and certificate fingerprint', () => {
    expect(parseRelayUrl(relay.urlOf(backendPort))).toEqual({ host: '127.0.0.1', relayPort: relay.port, serverPort: backendPort, fingerprint: relay.fingerprint });
    expect(relay.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it('relays a request to the server named in the preamble when the token is that server\'s', async () => {
    const answer = await get(target(backendPort, TOKEN), '/user/alice/api/status');
    expect(answer).toEqual({ status: 200, body: `server saw GET /user/alice/api/status token ${TOKEN}` });
  });

  it('refuses a wrong token with a 502 and never connects to the server', async () => {
    const before = backendConnections;
    const answer = await get(target(backendPort, 'b'.repeat(43)), '/user/alice/api/status');
    expect(answer.status).toBe(502);
    expect(answer.body).toContain(`wrong token for the server on port ${backendPort}`);
    expect(backendConnections).toBe(before);
  });

  it('refuses a port that is not one of its servers\', even with a valid token', async () => {
    const answer = await get(target(otherPort, TOKEN), '/');
    expect(answer.status).toBe(502);
    expect(answer.body).toContain(`no server of this instance on port ${otherPort}`);
    expect(answer.body).not.toContain('not a server of the pool');
  });

  it('refuses a client that speaks HTTP without a preamble', async () => {
    const { connect } = await import('node:tls');
    const socket = connect({ host: '127.0.0.1', port: relay.port, rejectUnauthorized: false });
    socket.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    let text = '';
    socket.on('data', (chunk: Buffer) => (text += chunk.toString()));
    await new Promise((resolve) => socket.on('close', resolve));
    expect(text).toMatch(/^HTTP\/1\.1 502 /);
    expect(text).toContain('not a relay preamble');
  });

  it('is not dialled by a gateway pinned to another certificate: the token is never sent', async () => {
    const error = await get(target(backendPort, TOKEN, selfSignedIdentity('another').fingerprint), '/').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TlsPinError);
  });

  it('carries the gateway\'s pooled requests, one pool per server, closed when forgotten', async () => {
    const pools = new RelayPools({ connectionsPerServer: 4, keepAliveTimeoutMs: 4_000, log });
    const server = target(backendPort, TOKEN);
    const pool = pools.dispatcher('alice', server);
    for (let i = 0; i < 3; i++) {
      const answer = await pool.request({ path: `/user/alice/${i}`, method: 'GET', headers: { authorization: `token ${TOKEN}` } });
      expect(await answer.body.text()).toBe(`server saw GET /user/alice/${i} token ${TOKEN}`);
    }
    expect(pools.dispatcher('alice', server)).toBe(pool);
    pools.forget('alice', server);
    expect(pools.users()).toEqual(['alice']);
    pools.forget('alice');
    expect(pools.users()).toEqual([]);
    await pools.close();
  });
});
