// The hub's side of one agent's WebSocket: request/reply with timeouts, and typed events for what the agent reports.
import { EventEmitter } from 'node:events';
import type { WebSocket } from 'ws';
import {
  type AgentMethod, type AgentMethods, type HeartbeatMessage, type HelloMessage, type HubMessage, type ProgressMessage,
  type ServerExitedMessage, agentMessageSchema,
} from '../../protocol/agent.js';
import type { Logger } from '../../lib/log.js';

/**
 * Thrown by `AgentConnection.request` when the agent answers with an error. `code` is the agent's stable code.
 *
 * @example
 * try { await conn.request('startServer', params, 60_000); }
 * catch (error) { if (error instanceof AgentRequestError) log.warn({ code: error.code }, error.message); }
 */
export class AgentRequestError extends Error {
  override readonly name = 'AgentRequestError';
  constructor(readonly instanceId: string, readonly method: string, readonly code: string, message: string) {
    super(message);
  }
}

/**
 * Thrown by `AgentConnection.request` when the connection closes or the agent does not answer in time.
 *
 * @example
 * new AgentUnavailableError('i-1', 'connection to the agent closed').message; // 'instance i-1: connection to the agent closed'
 */
export class AgentUnavailableError extends Error {
  override readonly name = 'AgentUnavailableError';
  readonly code = 'agent_unavailable';
  constructor(readonly instanceId: string, readonly reason: string) {
    super(`instance ${instanceId}: ${reason}`);
  }
}

/** What an agent connection reports. */
export interface AgentConnectionEvents {
  heartbeat: [message: HeartbeatMessage];
  progress: [message: ProgressMessage];
  serverExited: [message: ServerExitedMessage];
  /** The socket closed; every pending request has been rejected. */
  closed: [];
}

/** State of one agent connection: `open` until the socket closes, then `closed` for good. */
export type AgentConnectionState = 'open' | 'closed';

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
  timer: NodeJS.Timeout;
}

/**
 * One joined agent. Created by the registry after a valid `hello`.
 *
 * @example
 * registry.on('joined', (connection) => connection.on('heartbeat', (beat) => culler.report(beat.servers)));
 * const { url } = await connection.request('startServer', params, 60_000);
 */
export class AgentConnection extends EventEmitter<AgentConnectionEvents> {
  state: AgentConnectionState = 'open';
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  constructor(
    readonly instanceId: string,
    readonly hello: HelloMessage,
    private readonly socket: WebSocket,
    private readonly log: Logger,
  ) {
    super();
    socket.on('message', (data) => this.onFrame(String(data)));
    socket.on('close', () => this.onClose());
    socket.on('error', (error) => log.warn({ instance: instanceId, err: error.message }, 'agent socket error'));
  }

  /**
   * Calls a method on the agent and resolves with its result.
   *
   * @example
   * const { url } = await connection.request('startServer', params, 60_000);
   */
  request<M extends AgentMethod>(method: M, params: AgentMethods[M]['params'], timeoutMs: number): Promise<AgentMethods[M]['result']> {
    if (this.state !== 'open') return Promise.reject(new AgentUnavailableError(this.instanceId, 'agent is not connected'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new AgentUnavailableError(this.instanceId, `no answer to ${method} within ${Math.round(timeoutMs / 1000)} s`));
      }, timeoutMs);
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.send({ type: 'request', id, method, params });
    });
  }

  send(message: HubMessage): void {
    if (this.state === 'open') this.socket.send(JSON.stringify(message));
  }

  /** Closes the socket (the agent will reconnect on its own unless it is being deleted). */
  close(code = 1000, reason = 'closing'): void {
    this.socket.close(code, reason);
  }

  private onFrame(text: string): void {
    let parsed;
    try {
      parsed = agentMessageSchema.safeParse(JSON.parse(text));
    } catch {
      this.log.warn({ instance: this.instanceId }, 'agent sent a frame that is not JSON; ignored');
      return;
    }
    if (!parsed.success) {
      this.log.warn({ instance: this.instanceId, issue: parsed.error.issues[0]?.message }, 'agent sent an invalid message; ignored');
      return;
    }
    const message = parsed.data;
    switch (message.type) {
      case 'reply': {
        const waiter = this.pending.get(message.id);
        if (!waiter) return;
        this.pending.delete(message.id);
        clearTimeout(waiter.timer);
        if (message.ok) waiter.resolve(message.result);
        else waiter.reject(new AgentRequestError(this.instanceId, 'request', message.error.code, message.error.message));
        return;
      }
      case 'heartbeat':
        this.emit('heartbeat', message);
        return;
      case 'progress':
        this.emit('progress', message);
        return;
      case 'serverExited':
        this.emit('serverExited', message);
        return;
      case 'hello':
        this.log.warn({ instance: this.instanceId }, 'agent sent a second hello; ignored');
        return;
    }
  }

  private onClose(): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const [id, waiter] of this.pending) {
      clearTimeout(waiter.timer);
      waiter.reject(new AgentUnavailableError(this.instanceId, 'connection to the agent closed'));
      this.pending.delete(id);
    }
    this.emit('closed');
  }
}
