// The agent's WebSocket to the hub: dials out, says hello, keeps heartbeating, and reconnects with capped
// exponential backoff whenever the hub goes away (a hub restart never stops the agent or its servers).
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';
import { backoffMs } from '../lib/backoff.js';
import type { Logger } from '../lib/log.js';
import { pinnedConnector } from '../lib/tls.js';
import { AGENT_PATH, INSTANCE_HEADER, hubMessageSchema, type AgentMessage, type HubMessage } from '../protocol/agent.js';
import { AgentStateError } from './errors.js';
import type { TransitionTable } from '../lib/state.js';

/**
 * States of the hub connection.
 * - `idle`: created, `start()` not called yet.
 * - `connecting`: dialing the hub.
 * - `handshaking`: socket open, `hello` sent, waiting for `welcome`.
 * - `ready`: welcomed; heartbeats flow and requests are served.
 * - `waiting`: the connection dropped or failed; a reconnect is scheduled.
 * - `closed`: `close()` was called; nothing more happens.
 */
export type ConnectionState = 'idle' | 'connecting' | 'handshaking' | 'ready' | 'waiting' | 'closed';

const TRANSITIONS: TransitionTable<ConnectionState> = {
  idle: ['connecting', 'closed'],
  connecting: ['handshaking', 'waiting', 'closed'],
  handshaking: ['ready', 'waiting', 'closed'],
  ready: ['waiting', 'closed'],
  waiting: ['connecting', 'closed'],
  closed: [],
};

/** What the connection needs: where to dial, how to say hello and what to do with the hub's messages. */
export interface ConnectionOptions {
  readonly hubUrl: string;
  readonly instanceId: string;
  readonly joinToken: string;
  /**
   * `sha256:<hex>` the hub's TLS certificate must have when `hubUrl` is `https:`: nothing (not even the credential)
   * is sent to a hub presenting another. Absent: an `https:` hub is checked against the system's CAs.
   */
  readonly hubFingerprint?: string | undefined;
  readonly log: Logger;
  /** First reconnect delay, in milliseconds (doubles up to `reconnectMaxMs`). */
  readonly reconnectMinMs: number;
  /** Longest reconnect delay, in milliseconds. */
  readonly reconnectMaxMs: number;
  /** Heartbeat interval until `welcome` sets one, in milliseconds. */
  readonly heartbeatIntervalMs: number;
  /** Builds the `hello` sent on every (re)connect. */
  readonly hello: () => Promise<AgentMessage>;
  /** Builds each `heartbeat`. */
  readonly heartbeat: () => AgentMessage;
  /** A valid `request` from the hub. */
  readonly onRequest: (request: Extract<HubMessage, { type: 'request' }>) => void;
  /**
   * The hub refused this instance's credential (HTTP 401) or said it no longer knows the instance (close 4003): the
   * instance was removed. Called each time; the connection keeps retrying unless the owner closes it.
   */
  readonly onRejected?: (reason: string) => void;
}

/**
 * The agent's connection to the hub.
 *
 * @example
 * const connection = new HubConnection({ hubUrl, instanceId, joinToken, log, ..., onRequest });
 * connection.start();
 * connection.send({ type: 'progress', sessionId, percent: 50, message: 'starting Jupyter' });
 * await connection.close();
 */
export class HubConnection {
  private current: ConnectionState = 'idle';
  private socket: WebSocket | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private loop: Promise<void> | undefined;
  private closePromise: Promise<void> | undefined;
  private wake: (() => void) | undefined;

  constructor(private readonly options: ConnectionOptions) {}

  get state(): ConnectionState {
    return this.current;
  }

  /** Starts dialing; reconnects on its own until `close()`. */
  start(): void {
    if (this.current !== 'idle') throw new AgentStateError('start the hub connection', this.current);
    this.loop = this.run();
  }

  /** Sends a message when the socket is open; returns false (and drops it) otherwise. */
  send(message: AgentMessage): boolean {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN || (this.current !== 'ready' && this.current !== 'handshaking')) {
      this.options.log.debug({ type: message.type }, 'not connected; message dropped');
      return false;
    }
    socket.send(JSON.stringify(message));
    return true;
  }

  /** Closes the connection for good; a second call returns the first call's promise. */
  close(): Promise<void> {
    this.closePromise ??= (async () => {
      if (this.current !== 'closed') this.transition('closed');
      this.stopHeartbeat();
      this.wake?.();
      const socket = this.socket;
      if (socket && socket.readyState !== WebSocket.CLOSED) {
        const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
        socket.close(1001, 'agent stopping');
        await Promise.race([closed, sleep(1000)]);
        socket.terminate();
      }
      await this.loop;
    })();
    return this.closePromise;
  }

  /** A method, not a field read, so TypeScript does not narrow the state across awaits. */
  private isClosed(): boolean {
    return this.current === 'closed';
  }

  private transition(to: ConnectionState): void {
    const from = this.current;
    if (!TRANSITIONS[from].includes(to)) throw new AgentStateError(`go to "${to}"`, from);
    this.current = to;
    this.options.log.debug({ from, to }, 'hub connection state');
  }

  private async run(): Promise<void> {
    while (this.current !== 'closed') {
      this.transition('connecting');
      await this.connectOnce();
      if (this.isClosed()) return;
      this.transition('waiting');
      const delay = backoffMs(this.attempt, this.options.reconnectMinMs, this.options.reconnectMaxMs);
      const jittered = Math.round(delay * (0.75 + Math.random() * 0.5));
      this.attempt++;
      this.options.log.info({ delayMs: jittered, attempt: this.attempt }, 'reconnecting to the hub');
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, jittered);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** One connection, from dial to close; resolves when it is over. */
  private connectOnce(): Promise<void> {
    const url = new URL(AGENT_PATH, this.options.hubUrl.replace(/^http/, 'ws'));
    return new Promise<void>((resolve) => {
      const socket = new WebSocket(url, {
        headers: { Authorization: `Bearer ${this.options.joinToken}`, [INSTANCE_HEADER]: this.options.instanceId },
        handshakeTimeout: 10_000,
        ...(url.protocol === 'wss:' && this.options.hubFingerprint
          ? { createConnection: pinnedConnector(url, this.options.hubFingerprint) as unknown as WebSocket.ClientOptions['createConnection'] }
          : {}),
      });
      this.socket = socket;
      socket.on('open', () => {
        if (this.current !== 'connecting') return;
        this.transition('handshaking');
        this.options.log.info({ hub: url.origin }, 'connected to the hub');
        this.options
          .hello()
          .then((hello) => this.send(hello))
          .catch((error: unknown) => this.options.log.error({ err: (error as Error).message }, 'cannot build hello'));
      });
      socket.on('message', (data, isBinary) => this.onFrame(isBinary ? undefined : data.toString()));
      socket.on('unexpected-response', (_request, response) => {
        this.options.log.warn({ status: response.statusCode }, 'the hub refused the connection');
        socket.terminate();
        if (response.statusCode === 401) this.options.onRejected?.('the hub refused this instance\'s credential (it no longer exists)');
      });
      socket.on('error', (error) => this.options.log.warn({ err: error.message }, 'hub connection error'));
      socket.on('close', (code, reason) => {
        this.stopHeartbeat();
        if (code === 4003) this.options.onRejected?.(`the hub closed the connection: ${reason.toString() || 'unknown instance'}`);
        if (this.current !== 'closed') this.options.log.warn({ code }, 'hub connection closed');
        resolve();
      });
    });
  }

  private onFrame(text: string | undefined): void {
    let message: HubMessage;
    try {
      if (text === undefined) throw new Error('binary frame');
      const parsed = hubMessageSchema.safeParse(JSON.parse(text));
      if (!parsed.success) throw new Error(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '));
      message = parsed.data;
    } catch (error) {
      this.options.log.warn({ err: (error as Error).message }, 'invalid frame from the hub ignored');
      return;
    }
    if (message.type === 'welcome') {
      if (this.current !== 'handshaking') {
        this.options.log.warn({ state: this.current }, 'unexpected welcome ignored');
        return;
      }
      this.transition('ready');
      this.attempt = 0;
      this.startHeartbeat(message.heartbeatIntervalMs);
      this.options.log.info({ heartbeatIntervalMs: message.heartbeatIntervalMs }, 'welcomed by the hub');
      return;
    }
    this.options.onRequest(message);
  }

  private startHeartbeat(intervalMs: number): void {
    this.stopHeartbeat();
    const period = intervalMs || this.options.heartbeatIntervalMs;
    const socket = this.socket;
    let lastPong = Date.now();
    socket?.on('pong', () => (lastPong = Date.now()));
    const beat = (): void => {
      // A link that went dead without a FIN (a cut cable, a host cut off) shows no error for minutes: without an
      // answer to our pings for 3 periods, the connection is dropped and dialed again.
      if (socket && Date.now() - lastPong > 3 * period + 1000) {
        this.options.log.warn({ silentMs: Date.now() - lastPong }, 'the hub does not answer pings; reconnecting');
        socket.terminate();
        return;
      }
      socket?.ping();
      this.send(this.options.heartbeat());
    };
    beat();
    this.heartbeatTimer = setInterval(beat, period);
    this.heartbeatTimer.unref();
  }

  private stopHeartbeat(): void {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    this.heartbeatTimer = undefined;
  }
}

