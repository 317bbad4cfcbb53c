// A machine that joins the pool on its own (provider `static`): trades a one-use join token for a host credential
// (kept in a root-only file), trades that for an instance, runs the agent, and joins again as a new instance when
// the hub says the old one is gone (failed while cut off, drained, removed) — its servers stop first, so the hub
// never has two servers for one user.
import { mkdirSync, readFileSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import path from 'node:path';
import { createLogger, type Logger } from '../lib/log.js';
import { JOIN_PATH, joinResponseSchema, type JoinRequest, type JoinResponse } from '../protocol/agent.js';
import { Agent } from './agent.js';
import { AgentStateError, JoinRefusedError } from './errors.js';

/** Options of `JoinedMachine`; `joinDefaults` fills them in. */
export interface JoinOptions {
  /** The hub's agent URL, e.g. `http://10.0.0.1:8082` (what `dspool instances join-command` prints). */
  readonly hubUrl: string;
  /** The one-use join token; absent: use the host credential already in `stateDir`. */
  readonly token?: string;
  /**
   * Root-only directory (0700) holding `credential.json` (the host credential, 0600).
   * @default '/var/lib/dspool-agent'
   */
  readonly stateDir?: string;
  /**
   * This machine's local disk for instances (`<scratchDir>/<instance id>`, removed when the instance ends). Keep it
   * short: kernels' IPC sockets live below it and a Unix socket path holds at most 107 bytes.
   * @default '/var/lib/dspool-agent/i'
   */
  readonly scratchDir?: string;
  /** @default a pino logger named `agent-join` */
  readonly log?: Logger;
  /** First pause before asking the hub again, in ms (doubles up to `retryMaxMs`). @default 1000 */
  readonly retryMinMs?: number;
  /** @default 30000 */
  readonly retryMaxMs?: number;
}

export type ResolvedJoinOptions = Required<Omit<JoinOptions, 'token'>> & Pick<JoinOptions, 'token'>;

/**
 * Fills in every default of `JoinOptions`; the only place they live.
 *
 * @example
 * joinDefaults({ hubUrl: 'http://10.0.0.1:8082' }).stateDir; // '/var/lib/dspool-agent'
 */
export function joinDefaults(options: JoinOptions): ResolvedJoinOptions {
  const stateDir = options.stateDir ?? '/var/lib/dspool-agent';
  return {
    hubUrl: options.hubUrl,
    ...(options.token ? { token: options.token } : {}),
    stateDir,
    scratchDir: options.scratchDir ?? path.join(stateDir, 'i'),
    log: options.log ?? createLogger('agent-join'),
    retryMinMs: options.retryMinMs ?? 1000,
    retryMaxMs: options.retryMaxMs ?? 30_000,
  };
}

/** What `credential.json` holds. */
export interface HostCredentialFile {
  readonly hubUrl: string;
  readonly hostCredential: string;
}

/** Reads `<stateDir>/credential.json`, or undefined when this machine has not joined yet. */
export function readHostCredential(stateDir: string): HostCredentialFile | undefined {
  try {
    return JSON.parse(readFileSync(path.join(stateDir, 'credential.json'), 'utf8')) as HostCredentialFile;
  } catch {
    return undefined;
  }
}

function writeHostCredential(stateDir: string, value: HostCredentialFile): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
  const file = path.join(stateDir, 'credential.json');
  writeFileSync(file, `${JSON.stringify(value)}\n`, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * States of a joined machine.
 * - `idle`: `start()` not called.
 * - `joining`: asking the hub for an instance (retrying while it cannot be reached or has none free).
 * - `running`: its agent runs an instance.
 * - `closing` / `closed`: `close()` was called.
 */
export type JoinedMachineState = 'idle' | 'joining' | 'running' | 'closing' | 'closed';

/**
 * The agent side of `dspool agent join` / `dspool agent run`.
 *
 * @example
 * const machine = new JoinedMachine({ hubUrl, token });
 * machine.start();
 * await machine.done; // rejects with JoinRefusedError when the hub refuses this machine
 */
export class JoinedMachine {
  private current: JoinedMachineState = 'idle';
  private readonly options: ResolvedJoinOptions;
  private readonly log: Logger;
  private agent: Agent | undefined;
  private token: string | undefined;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  /** Resolves when closed, rejects with `JoinRefusedError` when the hub refuses this machine. */
  done: Promise<void> = Promise.resolve();

  constructor(options: JoinOptions) {
    this.options = joinDefaults(options);
    this.log = this.options.log;
    this.token = this.options.token;
  }

  get state(): JoinedMachineState {
    return this.current;
  }

  start(): void {
    if (this.current !== 'idle') throw new AgentStateError('start joining', this.current);
    this.current = 'joining';
    this.done = this.loop = this.run();
  }

  /** Stops the agent (its servers first) and stops joining. Safe to call twice. */
  async close(): Promise<void> {
    if (this.current === 'closed' || this.current === 'closing') return this.loop?.catch(() => undefined);
    this.current = 'closing';
    this.wake?.();
    await this.agent?.close();
    await this.loop?.catch(() => undefined);
    this.current = 'closed';
  }

  private stopping(): boolean {
    return this.current === 'closing' || this.current === 'closed';
  }

  private async pause(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    this.wake = undefined;
  }

  private async run(): Promise<void> {
    let attempt = 0;
    const backoff = (): number => Math.min(this.options.retryMaxMs, this.options.retryMinMs * 2 ** Math.min(attempt++, 10));
    while (!this.stopping()) {
      let request: JoinRequest;
      if (this.token) request = { token: this.token };
      else {
        const saved = readHostCredential(this.options.stateDir);
        if (!saved) throw new JoinRefusedError('not_joined', `this machine has not joined a pool yet (no ${path.join(this.options.stateDir, 'credential.json')}); run: dspool agent join <hub-url> --token <token>`);
        request = { hostCredential: saved.hostCredential };
      }
      let reply: JoinResponse;
      try {
        reply = await this.ask(request);
      } catch (error) {
        if (error instanceof JoinRefusedError) {
          if (error.code !== 'no_free_instance') throw error;
          this.log.warn({ reason: error.message }, 'the hub has no instance for this machine yet; asking again');
        } else {
          this.log.warn({ err: (error as Error).message }, 'cannot reach the hub to join; asking again');
        }
        await this.pause(backoff());
        continue;
      }
      attempt = 0;
      if (reply.hostCredential) {
        writeHostCredential(this.options.stateDir, { hubUrl: this.options.hubUrl, hostCredential: reply.hostCredential });
        this.token = undefined;
      }
      if (this.stopping()) return;
      await this.runInstance(reply);
      // The hub forgot the instance (or we are stopping): what it ran is stopped; join again as a new one.
      if (!this.stopping()) await this.pause(this.options.retryMinMs);
    }
  }

  private async ask(request: JoinRequest): Promise<JoinResponse> {
    const response = await fetch(new URL(JOIN_PATH, this.options.hubUrl), {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(request),
      signal: AbortSignal.timeout(15_000),
    });
    const body = (await response.json().catch(() => ({}))) as { code?: string; message?: string };
    if (!response.ok) throw new JoinRefusedError(body.code ?? `http_${response.status}`, body.message ?? `the hub answered ${response.status}`);
    return joinResponseSchema.parse(body);
  }

  private async runInstance(reply: JoinResponse): Promise<void> {
    const scratchDir = path.join(this.options.scratchDir, reply.instanceId);
    mkdirSync(scratchDir, { recursive: true, mode: 0o755 });
    chmodSync(scratchDir, 0o755);
    const agent = new Agent({
      hubUrl: this.options.hubUrl,
      instanceId: reply.instanceId,
      joinToken: reply.instanceToken,
      settings: { ...reply.settings, address: reply.address, scratchDir },
      log: this.log.child({ component: 'agent' }),
      onRejected: (reason) => {
        this.log.warn({ instance: reply.instanceId, reason }, 'the hub no longer knows this instance; stopping its servers and joining again');
        void agent.close();
      },
    });
    this.agent = agent;
    this.current = 'running';
    this.log.info({ instance: reply.instanceId, address: reply.address }, 'joined the pool');
    agent.start();
    await agent.done;
    this.agent = undefined;
    if (!this.stopping()) this.current = 'joining';
    rmSync(scratchDir, { recursive: true, force: true });
  }
}
