// Keeps the share mounted (pool.yaml `share.mount`): mounts it at start unless it already is, probes it every
// `probeIntervalMs` (write, fsync, read back, delete, in a child with a deadline), and when a probe fails reports the
// share unusable and mounts it again (lazy unmount, mount) with back-off. The agent reports `status` to the hub in its
// heartbeats; the hub marks the instance `unhealthy` (no new sessions) until the share is back.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../lib/log.js';
import { backoffMs } from '../lib/backoff.js';
import { Pause } from '../lib/pause.js';
import { pidAlive } from '../lib/process.js';
import { transitions } from '../lib/state.js';
import type { ShareMountSettings } from '../protocol/agent.js';
import { AgentStateError, ShareCredentialsError } from './errors.js';
import {
  checkRootOnlyFile,
  credentialFiles,
  isTheShare,
  knownHostsLine,
  mountAt,
  mountCommand,
  parseMountinfo,
  probeCommand,
  runCommand,
  sshfsContainsSymlinks,
  unmountCommand,
  type CommandResult,
  type MountEntry,
} from './share-mount.js';

/**
 * States of the share keeper.
 * - `idle`: `start()` not called.
 * - `mounting`: checking what is mounted, mounting (or detaching a stale mount first) and probing.
 * - `ready`: mounted and the last probe passed; probed again every `probeIntervalMs`.
 * - `stale`: the last mount or probe failed (`status.detail` says why); the next mount waits for the back-off.
 * - `closed`: `close()` was called; nothing runs any more (the mount stays: other agents on the machine may use it).
 */
export type ShareState = 'idle' | 'mounting' | 'ready' | 'stale' | 'closed';

const next = transitions<ShareState>('share', {
  idle: ['mounting', 'closed'],
  mounting: ['ready', 'stale', 'closed'],
  ready: ['stale', 'closed'],
  stale: ['mounting', 'closed'],
  closed: [],
});

/** What the agent reports: `ok` only in `ready`; otherwise `detail` says why the share is not usable. */
export interface ShareStatus {
  readonly state: ShareState;
  readonly ok: boolean;
  readonly detail?: string;
}

/** Options of `ShareKeeper`; `shareKeeperDefaults` fills them in. */
export interface ShareKeeperOptions {
  readonly sharePath: string;
  readonly mount: ShareMountSettings;
  /** How often a mounted share is probed, in ms. */
  readonly probeIntervalMs: number;
  /** How long one probe may take before the share counts as stale, in ms. */
  readonly probeTimeoutMs: number;
  /** Names the probe file, so agents sharing a machine never probe with the same file. */
  readonly instanceId: string;
  /** Root-only directory on the instance's disk for the sshfs known_hosts file (the pinned host key). */
  readonly stateDir: string;
  readonly log: Logger;
  /** First pause after a failed mount, in ms; doubled per failure in a row up to `retryMaxMs`. @default 2000 */
  readonly retryMinMs?: number;
  /** Longest pause between mount attempts, in ms. @default 60000 */
  readonly retryMaxMs?: number;
  /**
   * Where agents on one machine take the mount lock (one mounts, the others find it mounted).
   * @default '/run/dspool'
   */
  readonly lockDir?: string;
  /** Reads the mount table. @default reads /proc/self/mountinfo */
  readonly mounts?: () => MountEntry[];
}

export type ResolvedShareKeeperOptions = Required<ShareKeeperOptions>;

/**
 * Fills in every default of `ShareKeeperOptions`; the only place they live.
 *
 * @example
 * shareKeeperDefaults(options).retryMaxMs; // 60000
 */
export function shareKeeperDefaults(options: ShareKeeperOptions): ResolvedShareKeeperOptions {
  return {
    ...options,
    retryMinMs: options.retryMinMs ?? 2_000,
    retryMaxMs: options.retryMaxMs ?? 60_000,
    lockDir: options.lockDir ?? '/run/dspool',
    mounts: options.mounts ?? (() => parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8'))),
  };
}

/**
 * A short description of the mount for messages: its type and source (never a credential).
 *
 * @example
 * describeMount({ type: 'nfs', source: 'files:/export/share' } as ShareMountSettings); // 'nfs files:/export/share'
 */
export function describeMount(mount: ShareMountSettings): string {
  return mount.type === 'command' ? `the share.mount command${mount.source ? ` (${mount.source})` : ''}` : `${mount.type} ${mount.source}`;
}

/**
 * Keeps the share mounted and checked.
 *
 * @example
 * const share = new ShareKeeper({ sharePath: '/srv/share', mount, probeIntervalMs: 10_000, probeTimeoutMs: 10_000, instanceId, stateDir, log });
 * share.start();
 * await share.settled; // the first attempt is over: share.status.ok tells whether it worked
 */
export class ShareKeeper {
  private current: ShareState = 'idle';
  private readonly options: ResolvedShareKeeperOptions;
  private readonly log: Logger;
  private detail: string | undefined = 'the share has not been mounted yet';
  private readonly pause = new Pause();
  private probes = 0;
  /** Whether the installed sshfs contains symlinks by default (asked once). */
  private containsSymlinks: boolean | undefined;
  private resolveSettled!: () => void;
  /** Resolves once the first mount attempt is over (mounted and probed, or failed). */
  readonly settled: Promise<void> = new Promise((resolve) => (this.resolveSettled = resolve));

  constructor(options: ShareKeeperOptions) {
    this.options = shareKeeperDefaults(options);
    this.log = this.options.log.child({ component: 'share' });
  }

  get state(): ShareState {
    return this.current;
  }

  get status(): ShareStatus {
    return this.current === 'ready' ? { state: this.current, ok: true } : { state: this.current, ok: false, ...(this.detail ? { detail: this.detail } : {}) };
  }

  /** Starts mounting, then probing; runs until `close()`. */
  start(): void {
    if (this.current !== 'idle') throw new AgentStateError('start the share keeper', this.current);
    this.to('mounting');
    void this.run().catch((error: unknown) => {
      this.log.error({ err: (error as Error).message }, 'the share keeper stopped');
      this.resolveSettled();
    });
  }

  /** Stops probing and mounting; leaves the mount in place. Safe to call twice; never waits for a hung mount. */
  close(): void {
    if (this.current === 'closed') return;
    this.to('closed');
    this.pause.wake();
    this.resolveSettled();
  }

  private to(state: ShareState, detail?: string): void {
    const from = this.current;
    if (from === state) return;
    this.current = next(from, state);
    if (state === 'ready') this.detail = undefined;
    else if (detail !== undefined) this.detail = detail;
    const level = state === 'stale' ? 'warn' : 'info';
    this.log[level]({ from, to: state, ...(detail ? { detail } : {}) }, 'share state');
  }

  private closed(): boolean {
    return this.current === 'closed';
  }

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closed()) {
      const problem = await this.attempt();
      if (this.closed()) return;
      if (problem === undefined) {
        failures = 0;
        this.to('ready');
        this.resolveSettled();
        const failed = await this.watch();
        if (failed === undefined) return;
        // Mount again at once: the first attempt after a failed probe does not wait.
        this.to('stale', `share ${this.options.sharePath} failed its check (${failed}); mounting it again`);
      } else {
        failures++;
        const waitMs = backoffMs(failures - 1, this.options.retryMinMs, this.options.retryMaxMs);
        this.to('stale', `${problem}; trying again in ${Math.round(waitMs / 1000)} s`);
        this.resolveSettled();
        await this.pause.for(waitMs);
      }
      if (this.closed()) return;
      this.to('mounting');
    }
  }

  /** Probes every `probeIntervalMs` while the share passes; returns why it failed, or undefined once closed. */
  private async watch(): Promise<string | undefined> {
    while (!this.closed()) {
      await this.pause.for(this.options.probeIntervalMs);
      if (this.closed()) return undefined;
      const probe = await this.probe();
      if (this.closed()) return undefined;
      if (!probe.ok) return probe.detail;
    }
    return undefined;
  }

  /** Is the share mounted here (the configured one on top at the path), and does a write round trip pass? */
  private async probe(): Promise<CommandResult> {
    const top = mountAt(this.options.mounts(), this.options.sharePath);
    if (!top) return { ok: false, detail: `${this.options.sharePath} is not a mount point` };
    if (!isTheShare(top, this.options.mount)) return { ok: false, detail: `${this.options.sharePath} has ${top.fsType} ${top.source} mounted, not ${describeMount(this.options.mount)}` };
    const id = `${this.options.instanceId}-${process.pid}-${++this.probes}`;
    const result = await runCommand(probeCommand(this.options.sharePath, id), this.options.probeTimeoutMs);
    if (result.ok) return result;
    return { ok: false, detail: result.timedOut ? `a write to it did not finish within ${Math.round(this.options.probeTimeoutMs / 1000)} s` : `the write probe failed: ${result.detail}` };
  }

  /** One mount attempt; returns why it failed, or undefined when the share is mounted and passed a probe. */
  private async attempt(): Promise<string | undefined> {
    const { mount, sharePath } = this.options;
    try {
      for (const { file, field } of credentialFiles(mount)) checkRootOnlyFile(file, field);
    } catch (error) {
      if (error instanceof ShareCredentialsError) return `cannot mount the share: ${error.message}`;
      throw error;
    }
    return this.withLock(async () => {
      const top = mountAt(this.options.mounts(), sharePath);
      if (top && isTheShare(top, mount)) {
        const probe = await this.probe();
        if (probe.ok) return undefined; // Already mounted and writable: nothing to do.
        this.log.warn({ detail: probe.detail }, 'the share is mounted but fails its check; detaching it (lazy unmount) to mount it again');
        const detached = await runCommand(unmountCommand(sharePath), this.options.probeTimeoutMs);
        if (!detached.ok) return `share ${sharePath} fails its check (${probe.detail}) and could not be unmounted (${detached.detail})`;
      } else if (top) {
        return `share.path ${sharePath} has ${top.fsType} ${top.source} mounted, not ${describeMount(mount)}: unmount it, or fix share.mount`;
      }
      this.makeMountPoint();
      const command = mountCommand(mount, sharePath, {
        knownHostsFile: this.knownHostsFile(),
        sshfsContainsSymlinks: mount.type === 'sshfs' && (this.containsSymlinks ??= sshfsContainsSymlinks()),
      });
      const result = await runCommand(command, mount.timeoutMs);
      if (!result.ok) return `mounting ${describeMount(mount)} at ${sharePath} failed: ${result.detail}`;
      const mounted = mountAt(this.options.mounts(), sharePath);
      if (!mounted || !isTheShare(mounted, mount)) return `${describeMount(mount)} reported success but ${sharePath} is not a mount of it`;
      const probe = await this.probe();
      if (!probe.ok) return `share ${sharePath} was mounted but fails its check: ${probe.detail}`;
      this.log.info({ share: sharePath, mount: describeMount(mount) }, 'mounted the share');
      return undefined;
    });
  }

  /**
   * The directory under the mount, made root-only (0000) when the agent creates it: while the share is away nothing a
   * user runs can write there. Only called when `sharePath` is not a mount point (so it is a local directory).
   */
  private makeMountPoint(): void {
    const { sharePath } = this.options;
    if (existsSync(sharePath)) return;
    mkdirSync(path.dirname(sharePath), { recursive: true });
    mkdirSync(sharePath, { mode: 0o000 });
  }

  /** The sshfs known_hosts file with the pinned host key (public data), rewritten before each mount. */
  private knownHostsFile(): string {
    const file = path.join(this.options.stateDir, 'share-known_hosts');
    if (this.options.mount.type === 'sshfs') {
      mkdirSync(this.options.stateDir, { recursive: true });
      writeFileSync(file, knownHostsLine(this.options.mount.hostKey), { mode: 0o644 });
    }
    return file;
  }

  /**
   * Runs `fn` holding this machine's mount lock for the share (agents of the local provider share one machine):
   * one agent mounts, the others then find it mounted. A lock whose holder died is taken over.
   */
  private async withLock(fn: () => Promise<string | undefined>): Promise<string | undefined> {
    const { lockDir, sharePath, mount } = this.options;
    mkdirSync(lockDir, { recursive: true, mode: 0o755 });
    const lock = path.join(lockDir, `share-${createHash('sha256').update(path.resolve(sharePath)).digest('hex').slice(0, 16)}.lock`);
    const deadline = Date.now() + mount.timeoutMs + 2 * this.options.probeTimeoutMs + 10_000;
    for (;;) {
      try {
        mkdirSync(lock, { mode: 0o700 });
        writeFileSync(path.join(lock, 'pid'), String(process.pid));
        break;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
        if (this.lockAbandoned(lock)) {
          rmSync(lock, { recursive: true, force: true });
          continue;
        }
        if (Date.now() > deadline) return `another agent on this machine has been mounting the share for too long (lock ${lock})`;
        await sleep(250);
        if (this.closed()) return 'closing';
      }
    }
    try {
      return await fn();
    } finally {
      rmSync(lock, { recursive: true, force: true });
    }
  }

  private lockAbandoned(lock: string): boolean {
    try {
      const pid = Number(readFileSync(path.join(lock, 'pid'), 'utf8'));
      return !(pid > 0) || !pidAlive(pid);
    } catch {
      // No pid yet: its holder is between mkdir and write, or died there.
      try {
        return Date.now() - statSync(lock).mtimeMs > 5_000;
      } catch {
        return false;
      }
    }
  }
}
