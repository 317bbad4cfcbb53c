// Accepts agents dialing in (join token check, then `hello`) and keeps one live connection per instance.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { EventEmitter } from 'node:events';
import { WebSocketServer, type WebSocket } from 'ws';
import { INSTANCE_HEADER, helloSchema, type HelloMessage } from '../../protocol/agent.js';
import type { Logger } from '../../lib/log.js';
import { AgentConnection } from './connection.js';

/** What the registry needs from the hub. */
export interface AgentRegistryContext {
  /** True when `token` is the join token issued to `instanceId`. */
  verifyJoin(instanceId: string, token: string): Promise<boolean>;
  readonly heartbeatIntervalMs: number;
  readonly log: Logger;
}

/** Events of the registry. */
export interface AgentRegistryEvents {
  /** An agent joined (or rejoined after a hub or network restart). */
  joined: [connection: AgentConnection];
  /** An agent's connection closed. */
  left: [instanceId: string, connection: AgentConnection];
}

const HELLO_TIMEOUT_MS = 10_000;

/**
 * Accepts agents dialing in (join token, then `hello`) and keeps one live connection per instance.
 *
 * @example
 * const registry = new AgentRegistry({ verifyJoin: async (id, token) => pool.verifyJoin(id, token), heartbeatIntervalMs: 15_000, log });
 * server.on('upgrade', (req, socket, head) => void registry.handleUpgrade(req, socket, head));
 * registry.on('joined', (connection) => log.info({ instance: connection.instanceId }, 'agent joined'));
 */
export class AgentRegistry extends EventEmitter<AgentRegistryEvents> {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4 * 1024 * 1024 });
  private readonly connections = new Map<string, AgentConnection>();

  constructor(private readonly ctx: AgentRegistryContext) {
    super();
  }

  get(instanceId: string): AgentConnection | undefined {
    return this.connections.get(instanceId);
  }

  /** Handles an HTTP upgrade on the agent path: refuses bad credentials with 401 before any WebSocket exists. */
  async handleUpgrade(request: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const instanceId = request.headers[INSTANCE_HEADER];
    const auth = request.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (typeof instanceId !== 'string' || !token || !(await this.ctx.verifyJoin(instanceId, token))) {
      this.ctx.log.warn({ instance: instanceId, from: request.socket.remoteAddress }, 'agent refused: bad join token');
      socket.end('HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
      return;
    }
    this.wss.handleUpgrade(request, socket, head, (ws) => this.awaitHello(instanceId, ws));
  }

  /** Closes every agent connection (agents keep running and will reconnect to the next hub). */
  close(): void {
    for (const connection of this.connections.values()) connection.close(1001, 'hub shutting down');
    this.wss.close();
  }

  private awaitHello(instanceId: string, ws: WebSocket): void {
    ws.setMaxListeners(20);
    const timer = setTimeout(() => ws.close(4000, 'no hello'), HELLO_TIMEOUT_MS);
    ws.once('message', (data) => {
      clearTimeout(timer);
      let hello: HelloMessage;
      try {
        hello = helloSchema.parse(JSON.parse(String(data)));
      } catch (error) {
        this.ctx.log.warn({ instance: instanceId, err: (error as Error).message }, 'agent refused: invalid hello');
        ws.close(4001, 'invalid hello');
        return;
      }
      if (hello.instanceId !== instanceId) {
        ws.close(4001, 'instance id mismatch');
        return;
      }
      const previous = this.connections.get(instanceId);
      const connection = new AgentConnection(instanceId, hello, ws, this.ctx.log);
      this.connections.set(instanceId, connection);
      previous?.close(4002, 'replaced by a newer connection');
      connection.on('closed', () => {
        if (this.connections.get(instanceId) === connection) this.connections.delete(instanceId);
        this.emit('left', instanceId, connection);
      });
      connection.send({ type: 'welcome', heartbeatIntervalMs: this.ctx.heartbeatIntervalMs });
      this.emit('joined', connection);
    });
  }
}
