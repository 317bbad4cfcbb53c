// Test and benchmark support: a fake hub speaking the gateway protocol over a real WebSocket (a fake at the
// process boundary) and serving `/hub/*` over plain HTTP on the same port. Not for production use.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { GATEWAY_PATH, gatewayToHubSchema, type HubToGateway, type Identity, type Route } from '../protocol/gateway.js';
import type { CredentialKind } from './auth-cache.js';

/** Options of {@link startFakeHub}. */
export interface FakeHubOptions {
  /** Gateway secret the hub accepts. @default 'test-secret' */
  secret?: string;
  /** Port to listen on (loopback); 0 picks a free one. @default 0 */
  port?: number;
  /** Initial routes. @default [] */
  routes?: readonly Route[];
  /** Known credentials: `"token:<t>"` or `"cookie:<c>"` → identity. @default {} */
  identities?: Record<string, Identity>;
}

/**
 * A fake hub. `/hub/*` answers JSON `{ method, url, headers }`; the gateway endpoint pushes routes and answers
 * auth lookups from `identities`.
 *
 * @internal
 */
export interface FakeHub {
  readonly port: number;
  readonly url: string;
  readonly secret: string;
  readonly routes: Map<string, Route>;
  readonly identities: Map<string, Identity>;
  /** Auth lookups received, by credential. */
  readonly lookups: Map<string, number>;
  /** When false, auth lookups are received but never answered (a stuck hub). */
  answerAuth: boolean;
  /** The last counters a gateway reported. */
  stats: { requests: number; errors: number; websockets: number } | undefined;
  /** Last request a person made, per user, as the gateway reported it (ISO-8601). */
  readonly activity: Record<string, string>;
  /** Number of gateway links currently open. */
  readonly links: number;
  /** Resolves when a gateway link is open and has received its snapshot. */
  linked(): Promise<void>;
  setRoute(route: Route): void;
  unroute(user: string, sessionId: string): void;
  revoke(user?: string): void;
  close(): Promise<void>;
}

/**
 * Starts a fake hub on loopback.
 *
 * @example
 * const hub = await startFakeHub({ identities: { 'token:t1': { user: 'alice', admin: false } } });
 * const gateway = createGateway({ hubUrl: hub.url, secret: hub.secret, port: 0 });
 * @internal
 */
export async function startFakeHub(options: FakeHubOptions = {}): Promise<FakeHub> {
  const secret = options.secret ?? 'test-secret';
  const routes = new Map((options.routes ?? []).map((route) => [route.user, route]));
  const identities = new Map(Object.entries(options.identities ?? {}));
  const lookups = new Map<string, number>();
  const sockets = new Set<WebSocket>();
  let waiters: (() => void)[] = [];

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      res.writeHead(200, { 'content-type': 'application/json', 'x-served-by': 'fake-hub' });
      res.end(body);
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (req.url !== GATEWAY_PATH || req.headers.authorization !== `Bearer ${secret}`) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.add(ws);
      ws.on('close', () => sockets.delete(ws));
      ws.on('error', () => ws.terminate());
      ws.on('message', (data) => {
        const parsed = gatewayToHubSchema.safeParse(JSON.parse(data.toString()));
        if (!parsed.success) return;
        const message = parsed.data;
        if (message.type === 'stats') {
          hub.stats = message;
          return;
        }
        if (message.type === 'activity') {
          Object.assign(hub.activity, message.users);
          return;
        }
        const key = `${message.kind}:${message.value}`;
        lookups.set(key, (lookups.get(key) ?? 0) + 1);
        if (!hub.answerAuth) return;
        send(ws, { type: 'authResult', id: message.id, identity: identities.get(key) ?? null });
      });
      send(ws, { type: 'routes', routes: [...routes.values()] });
      const ready = waiters;
      waiters = [];
      for (const resolve of ready) resolve();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;

  const broadcast = (message: HubToGateway): void => {
    for (const ws of sockets) send(ws, message);
  };

  const hub: FakeHub = {
    stats: undefined,
    activity: {},
    port,
    url: `http://127.0.0.1:${port}`,
    secret,
    routes,
    identities,
    lookups,
    answerAuth: true,
    get links() {
      return sockets.size;
    },
    linked() {
      if (sockets.size > 0) return Promise.resolve();
      return new Promise((resolve) => waiters.push(resolve));
    },
    setRoute(route) {
      routes.set(route.user, route);
      broadcast({ type: 'route', route });
    },
    unroute(user, sessionId) {
      if (routes.get(user)?.sessionId === sessionId) routes.delete(user);
      broadcast({ type: 'unroute', user, sessionId });
    },
    revoke(user) {
      broadcast(user === undefined ? { type: 'revoke' } : { type: 'revoke', user });
    },
    async close() {
      for (const ws of sockets) ws.terminate();
      wss.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return hub;
}

/** Key of a credential in {@link FakeHub.identities} and {@link FakeHub.lookups}. @internal */
export function credentialKey(kind: CredentialKind, value: string): string {
  return `${kind}:${value}`;
}

function send(ws: WebSocket, message: HubToGateway): void {
  ws.send(JSON.stringify(message));
}
