// Serves gateways: pushes the routing table (snapshot, then changes) and answers their credential lookups.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import { gatewayToHubSchema, type GatewayStats, type HubToGateway, type Identity, type Route } from '../protocol/gateway.js';
import type { Logger } from '../lib/log.js';
import { sameSecret } from '../lib/secret.js';

/** What the feed needs from the hub. */
export interface GatewayFeedContext {
  readonly secret: string;
  /** Every route that should exist now. */
  routes(): Route[];
  /** Resolves a browser cookie or API token to who it belongs to. */
  resolve(kind: 'cookie' | 'token', value: string): Promise<Identity | null>;
  /** A gateway's counters (null: that gateway went away); `key` tells gateways apart. */
  stats?(key: string, stats: GatewayStats | null): void;
  /** A person made a request to `user`'s server at `atMs` (the gateway's judgement; polling never counts). */
  personRequest?(user: string, atMs: number): void;
  readonly log: Logger;
}

/**
 * Serves gateways over a WebSocket: sends them the routes and answers their credential lookups.
 *
 * @example
 * const feed = new GatewayFeed({ secret: gatewaySecret, routes: () => sessions.routes(), resolve, log });
 * server.on('upgrade', (req, socket, head) => feed.handleUpgrade(req, socket, head));
 * feed.publish(route); // every connected gateway learns the route
 */
export class GatewayFeed {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly gateways = new Set<WebSocket>();
  private connections = 0;

  constructor(private readonly ctx: GatewayFeedContext) {}

  handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): void {
    const auth = request.headers.authorization ?? '';
    if (!auth.startsWith('Bearer ') || !sameSecret(auth.slice(7), this.ctx.secret)) {
      this.ctx.log.warn({ from: request.socket.remoteAddress }, 'gateway refused: bad secret');
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.attach(ws));
  }

  /** A route appeared or moved. */
  publish(route: Route): void {
    this.broadcast({ type: 'route', route });
  }

  unpublish(user: string, sessionId: string): void {
    this.broadcast({ type: 'unroute', user, sessionId });
  }

  /** Drops cached identities in every gateway: one user's, or all. */
  revoke(user?: string): void {
    this.broadcast(user === undefined ? { type: 'revoke' } : { type: 'revoke', user });
  }

  close(): void {
    for (const ws of this.gateways) ws.close(1001, 'hub shutting down');
    this.wss.close();
  }

  private attach(ws: WebSocket): void {
    this.gateways.add(ws);
    const key = `gateway-${++this.connections}`;
    ws.on('close', () => {
      this.gateways.delete(ws);
      this.ctx.stats?.(key, null);
    });
    ws.on('error', (error) => this.ctx.log.warn({ err: error.message }, 'gateway socket error'));
    ws.on('message', (data) => void this.onFrame(ws, key, String(data)));
    this.send(ws, { type: 'routes', routes: this.ctx.routes() });
  }

  private async onFrame(ws: WebSocket, key: string, text: string): Promise<void> {
    let message;
    try {
      message = gatewayToHubSchema.parse(JSON.parse(text));
    } catch {
      this.ctx.log.warn('gateway sent an invalid message; ignored');
      return;
    }
    if (message.type === 'stats') {
      const { type: _type, ...stats } = message;
      this.ctx.stats?.(key, stats);
      return;
    }
    if (message.type === 'activity') {
      for (const [user, at] of Object.entries(message.users)) {
        const atMs = Date.parse(at);
        if (Number.isFinite(atMs)) this.ctx.personRequest?.(user, atMs);
      }
      return;
    }
    let identity: Identity | null = null;
    try {
      identity = await this.ctx.resolve(message.kind, message.value);
    } catch (error) {
      this.ctx.log.error({ err: (error as Error).message }, 'credential lookup failed');
    }
    this.send(ws, { type: 'authResult', id: message.id, identity });
  }

  private broadcast(message: HubToGateway): void {
    const text = JSON.stringify(message);
    for (const ws of this.gateways) if (ws.readyState === ws.OPEN) ws.send(text);
  }

  private send(ws: WebSocket, message: HubToGateway): void {
    if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
  }
}
