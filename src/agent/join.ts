// A machine that joins the pool on its own (provider `static`): trades a one-use join token for a host credential
// (kept in a root-only file), trades that for an instance, runs the agent, and joins again as a new instance when
// the hub says the old one is gone (failed while cut off, drained, removed) — its servers stop first, so the hub
// never has two servers for one user.
import { mkdirSync, readFileSync, rmSync, chmodSync } from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import { TlsPinError } from '../lib/errors.js';
import { replaceFile } from '../lib/atomic-file.js';
import { backoffMs } from '../lib/backoff.js';
import { createLogger, type Logger } from '../lib/log.js';
import { Pause } from '../lib/pause.js';
import { pinnedConnector } from '../lib/tls.js';
import { JOIN_PATH, joinResponseSchema, type JoinRequest, type JoinResponse } from '../protocol/agent.js';
import { Agent } from './agent.js';
import { AgentStateError, JoinRefusedError } from './errors.js';

/** Options of `JoinedMachine`; `joinDefaults` fills them in. */
export interface JoinOptions {
  /** The hub's agent URL, e.g. `http://10.0.0.1:8082` (what `dspool instances join-command` prints). */
  readonly hubUrl: string;
  /**
   * `sha256:<hex>` of the hub's TLS certificate (what join-command prints as `--hub-fingerprint`), pinned on every
   * connection to an `https:` hub: a hub presenting another certificate is refused before anything is sent.
   * Absent: the one saved in `credential.json`, else none (an `https:` hub is then checked against the system's CAs).
   */
  readonly hubFingerprint?: string;
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

export type ResolvedJoinOptions = Required<Omit<JoinOptions, 'token' | 'hubFingerprint'>> & Pick<JoinOptions, 'token' | 'hubFingerprint'>;

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
    ...(options.hubFingerprint ? { hubFingerprint: options.hubFingerprint } : {}),
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
  /** The hub's pinned TLS fingerprint (`https:` hubs). */
  readonly hubFingerprint?: string;
}

/**
 * Reads `<stateDir>/credential.json`, or undefined when this machine has not joined yet.
 *
 * @example
 * readHostCredential('/var/lib/dspool-agent')?.hubUrl; // 'https://pool.example:8081', or undefined before the first join
 */
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
  // Replaced whole: a crash mid-write must not leave a machine that has forgotten it joined.
  replaceFile(file, `${JSON.stringify(value)}\n`, 0o600);
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
  private readonly pause = new Pause();
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
    this.pause.wake();
    await this.agent?.close();
    await this.loop?.catch(() => undefined);
    this.current = 'closed';
  }

  private stopping(): boolean {
    return this.current === 'closing' || this.current === 'closed';
  }

  private async run(): Promise<void> {
    let attempt = 0;
    const backoff = (): number => backoffMs(attempt++, this.options.retryMinMs, this.options.retryMaxMs);
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
        if (error instanceof TlsPinError) throw new JoinRefusedError('hub_fingerprint_mismatch', `${error.message} (check --hub-fingerprint against what "dspool instances join-command" printed)`);
        if (error instanceof JoinRefusedError) {
          if (error.code !== 'no_free_instance') throw error;
          this.log.warn({ reason: error.message }, 'the hub has no instance for this machine yet; asking again');
        } else {
          this.log.warn({ err: (error as Error).message }, 'cannot reach the hub to join; asking again');
        }
        await this.pause.for(backoff());
        continue;
      }
      attempt = 0;
      if (reply.hostCredential) {
        const hubFingerprint = this.fingerprint();
        writeHostCredential(this.options.stateDir, { hubUrl: this.options.hubUrl, hostCredential: reply.hostCredential, ...(hubFingerprint ? { hubFingerprint } : {}) });
        this.token = undefined;
      }
      if (this.stopping()) return;
      await this.runInstance(reply);
      // The hub forgot the instance (or we are stopping): what it ran is stopped; join again as a new one.
      if (!this.stopping()) await this.pause.for(this.options.retryMinMs);
    }
  }

  /** The fingerprint to pin: the one given, else the one saved when this machine joined. */
  private fingerprint(): string | undefined {
    return this.options.hubFingerprint ?? readHostCredential(this.options.stateDir)?.hubFingerprint;
  }

  private async ask(request: JoinRequest): Promise<JoinResponse> {
    const url = new URL(JOIN_PATH, this.options.hubUrl);
    const fingerprint = this.fingerprint();
    const { status, text } = url.protocol === 'https:' && fingerprint ? await pinnedPost(url, fingerprint, JSON.stringify(request)) : await plainPost(url, JSON.stringify(request));
    let body: { code?: string; message?: string } = {};
    try {
      body = JSON.parse(text) as typeof body;
    } catch {
      // not JSON: the status says enough
    }
    if (status < 200 || status >= 300) throw new JoinRefusedError(body.code ?? `http_${status}`, body.message ?? `the hub answered ${status}`);
    return joinResponseSchema.parse(body);
  }

  private async runInstance(reply: JoinResponse): Promise<void> {
    const scratchDir = path.join(this.options.scratchDir, reply.instanceId);
    mkdirSync(scratchDir, { recursive: true, mode: 0o755 });
    chmodSync(scratchDir, 0o755);
    const hubFingerprint = this.fingerprint();
    const agent = new Agent({
      hubUrl: this.options.hubUrl,
      instanceId: reply.instanceId,
      joinToken: reply.instanceToken,
      // The fingerprint this machine pinned, whatever the reply says (it came over that pinned connection anyway).
      settings: { ...reply.settings, address: reply.address, scratchDir, ...(hubFingerprint ? { hubFingerprint } : {}) },
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

async function plainPost(url: URL, body: string): Promise<{ status: number; text: string }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(15_000) });
  return { status: response.status, text: await response.text().catch(() => '') };
}

/** POSTs JSON over TLS pinned to `fingerprint`; rejects with `TlsPinError` (nothing sent) when the hub is another. */
function pinnedPost(url: URL, fingerprint: string, body: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const request = https.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
      createConnection: pinnedConnector(url, fingerprint) as unknown as https.RequestOptions['createConnection'],
      timeout: 15_000,
    }, (response) => {
      const chunks: Buffer[] = [];
      response.on('data', (chunk: Buffer) => chunks.push(chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error('the hub did not answer within 15 s')));
    request.on('error', reject);
    request.end(body);
  });
}
