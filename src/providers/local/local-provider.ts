// The embedded provider: each instance is an agent process on this machine, detached into its own process
// group, with a scratch directory `<scratchDir>/<id>/` that is deleted with it.
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { LocalProviderConfig } from '../../config/schema.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { AGENT_ENV, type AgentSettings } from '../../protocol/agent.js';
import type { DeleteOptions, InstanceGone, InstanceSpec, Provider, ProviderInstance } from '../provider.js';
import { AgentEntryMissingError, AgentSpawnError, InstanceExistsError, InvalidInstanceIdError, ProviderClosedError } from './errors.js';
import { pidAlive, pidsByEnv } from '../../lib/process.js';
import { replaceFile } from '../../lib/atomic-file.js';
import { commandLine, descendants, signal } from './processes.js';
import { detectCgroups, instanceCgroupName, killInstanceCgroup } from '../../agent/cgroup.js';

/** Options of `LocalProvider`; `localProviderDefaults` fills them in. */
export interface LocalProviderOptions {
  /** Directory holding one sub-directory per instance (its local disk); created if missing. */
  readonly scratchDir: string;
  /**
   * Absolute path of the agent's compiled entry point, run with this Node (`process.execPath`).
   * @default `dist/agent/main.js` of this dspool package (resolved from this module's location)
   */
  readonly agentEntry?: string;
  /**
   * Address the instances' servers bind to.
   * @default '127.0.0.1'
   */
  readonly address?: string;
  /**
   * Logger for the provider.
   * @default a pino logger named `local-provider` on stderr
   */
  readonly log?: Logger;
  /**
   * Grace period of `delete` when the caller gives none, in milliseconds.
   * @default 10000
   */
  readonly deleteGraceMs?: number;
}

/** `LocalProviderOptions` with every default filled in. */
export type ResolvedLocalProviderOptions = Required<LocalProviderOptions>;

/** Where the agent entry is looked for when `agentEntry` is not given: next to this module, then in dist/. */
function agentEntryCandidates(): string[] {
  return [
    fileURLToPath(new URL('../../agent/main.js', import.meta.url)),
    fileURLToPath(new URL('../../../dist/agent/main.js', import.meta.url)),
  ];
}

/**
 * Fills in every default of `LocalProviderOptions`; the only place they live.
 *
 * @example
 * localProviderDefaults({ scratchDir: '/var/lib/dspool/instances' }).address; // '127.0.0.1'
 */
export function localProviderDefaults(options: LocalProviderOptions): ResolvedLocalProviderOptions {
  const candidates = agentEntryCandidates();
  return {
    scratchDir: path.resolve(options.scratchDir),
    agentEntry: options.agentEntry ?? candidates.find((candidate) => existsSync(candidate)) ?? candidates[0] ?? '',
    address: options.address ?? '127.0.0.1',
    log: options.log ?? createLogger('local-provider'),
    deleteGraceMs: options.deleteGraceMs ?? 10_000,
  };
}

/** What `create` writes to `<scratchDir>/<id>/instance.json`, so a restarted hub finds its agents. */
export interface InstanceRecord {
  readonly id: string;
  readonly pid: number;
  readonly address: string;
  /** ISO-8601. */
  readonly created: string;
  readonly agentEntry: string;
}

/**
 * States of the provider.
 * - `open`: creates, deletes and lists instances.
 * - `closed`: `close()` was called; instances keep running, new calls are refused.
 */
export type LocalProviderState = 'open' | 'closed';

const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
const RECORD_FILE = 'instance.json';

/**
 * Runs each instance as a detached agent process on this machine. It leaves out network isolation (every
 * instance binds `address`) and owns no connection: agents dial the hub themselves.
 *
 * @example
 * const provider = new LocalProvider({ scratchDir: '/var/lib/dspool/instances' });
 * await provider.create({ id: 'i-1', hubUrl, joinToken, settings });
 * await provider.delete('i-1', { graceMs: 5000 });
 */
export class LocalProvider implements Provider {
  readonly type = 'local';
  private readonly options: ResolvedLocalProviderOptions;
  private readonly log: Logger;
  private current: LocalProviderState = 'open';
  private readonly deleting = new Map<string, Promise<void>>();
  /** Creations in flight: a delete of the same instance waits for its create, so it finds the agent to stop. */
  private readonly creating = new Map<string, Promise<unknown>>();
  /** Instances the hub asked to delete (kept: their agent's exit may be seen after the delete has finished). */
  private readonly deleteRequested = new Set<string>();
  private readonly goneListeners = new Set<(gone: InstanceGone) => void>();

  constructor(options: LocalProviderOptions) {
    this.options = localProviderDefaults(options);
    this.log = this.options.log;
  }

  get state(): LocalProviderState {
    return this.current;
  }

  /** The scratch directory of one instance. */
  instanceDir(id: string): string {
    return path.join(this.options.scratchDir, id);
  }

  /**
   * The instance's short runtime directory for users' kernel sockets (a Unix socket path must fit in ~107 bytes, and
   * the scratch dir can be deep): `/run/dspool/<id>` as root, `<tmpdir>/dspool-<uid>/<id>` otherwise.
   */
  runtimeDir(id: string): string {
    const uid = process.getuid?.() ?? 0;
    return uid === 0 ? path.join('/run/dspool', id) : path.join(os.tmpdir(), `dspool-${uid}`, id);
  }

  create(spec: InstanceSpec): Promise<ProviderInstance> {
    const created = this.runCreate(spec);
    const settled = created.catch(() => undefined).finally(() => this.creating.delete(spec.id));
    this.creating.set(spec.id, settled);
    return created;
  }

  private async runCreate(spec: InstanceSpec): Promise<ProviderInstance> {
    this.assertOpen('create an instance');
    if (!INSTANCE_ID.test(spec.id)) throw new InvalidInstanceIdError(spec.id);
    if (!existsSync(this.options.agentEntry)) throw new AgentEntryMissingError([this.options.agentEntry]);
    const dir = this.instanceDir(spec.id);
    const previous = await this.readRecord(spec.id);
    if (previous && this.isOurAgent(previous)) throw new InstanceExistsError(spec.id, previous.pid);
    // Leftovers of an instance whose agent is gone are not this instance's disk.
    await rm(dir, { recursive: true, force: true });
    await mkdir(this.options.scratchDir, { recursive: true, mode: 0o755 });
    // Users' servers must traverse it to reach their folders on the instance's disk under it.
    await mkdir(dir, { mode: 0o755 });

    await rm(this.runtimeDir(spec.id), { recursive: true, force: true });
    const settings: AgentSettings = { ...spec.settings, address: this.options.address, scratchDir: dir, runtimeDir: this.runtimeDir(spec.id) };
    const logFd = openSync(path.join(dir, 'agent.log'), 'a', 0o600);
    const created = new Date().toISOString();
    const recordOf = (pid: number): InstanceRecord => ({ id: spec.id, pid, address: this.options.address, created, agentEntry: this.options.agentEntry });
    let pid: number;
    try {
      const child = spawn(process.execPath, [this.options.agentEntry], {
        cwd: dir,
        detached: true,
        stdio: ['ignore', logFd, logFd],
        env: {
          PATH: withSbin(process.env.PATH),
          LANG: process.env.LANG ?? 'C.UTF-8',
          [AGENT_ENV.hubUrl]: spec.hubUrl,
          [AGENT_ENV.instanceId]: spec.id,
          // The join token only ever travels in the environment.
          [AGENT_ENV.joinToken]: spec.joinToken,
          [AGENT_ENV.settings]: JSON.stringify(settings),
        },
      });
      // The record is written before this call yields to the event loop: a hub stopped right now (Ctrl-C during a
      // scale-out) still finds this agent through `list()` and deletes it, instead of leaving it running unseen.
      if (child.pid !== undefined) this.writeRecord(recordOf(child.pid));
      const spawned = await new Promise<number>((resolve, reject) => {
        child.once('spawn', () => resolve(child.pid as number));
        child.once('error', reject);
      });
      pid = spawned;
      child.on('exit', (code, sig) => {
        this.log.info({ instance: spec.id, pid, code, signal: sig }, 'agent exited');
        // Not asked to: the instance is gone, and the hub hears it now rather than after its silence.
        if (this.current === 'open' && !this.deleteRequested.has(spec.id)) {
          const reason = sig ? `its agent process was killed by ${sig}` : `its agent process exited with code ${code}`;
          for (const listener of this.goneListeners) listener({ id: spec.id, reason });
        }
      });
      child.unref();
    } catch (error) {
      throw new AgentSpawnError(spec.id, { cause: error });
    } finally {
      closeSync(logFd);
    }
    this.log.info({ instance: spec.id, pid, dir }, 'instance created');
    return toInstance(recordOf(pid));
  }

  delete(id: string, options: DeleteOptions = {}): Promise<void> {
    this.assertOpen('delete an instance');
    if (!INSTANCE_ID.test(id)) return Promise.resolve();
    this.deleteRequested.add(id);
    let running = this.deleting.get(id);
    if (!running) {
      const inFlight = this.creating.get(id) ?? Promise.resolve();
      running = inFlight.then(() => this.runDelete(id, options.graceMs ?? this.options.deleteGraceMs)).finally(() => this.deleting.delete(id));
      this.deleting.set(id, running);
    }
    return running;
  }

  async list(): Promise<ProviderInstance[]> {
    this.assertOpen('list instances');
    let entries: string[];
    try {
      entries = await readdir(this.options.scratchDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const out: ProviderInstance[] = [];
    for (const entry of entries.sort()) {
      if (!INSTANCE_ID.test(entry)) continue;
      const record = await this.readRecord(entry);
      if (record && this.isOurAgent(record) && !this.deleting.has(entry)) out.push(toInstance(record));
    }
    return out;
  }

  /**
   * Calls `listener` when an instance's agent process (a child of this provider) exits without `delete` asked
   * for it; instances re-adopted after a hub restart are not this process's children and are not watched.
   *
   * @example
   * const stop = provider.watchGone(({ id, reason }) => log.warn({ id }, reason));
   */
  watchGone(listener: (gone: InstanceGone) => void): () => void {
    this.goneListeners.add(listener);
    return () => this.goneListeners.delete(listener);
  }

  /** Marks the provider closed; instances keep running (a restarted hub re-adopts them through `list`). */
  async close(): Promise<void> {
    if (this.current === 'closed') return;
    this.goneListeners.clear();
    this.current = 'closed';
    this.log.debug('local provider closed');
  }

  private assertOpen(operation: string): void {
    if (this.current !== 'open') throw new ProviderClosedError(operation, this.current);
  }

  private writeRecord(record: InstanceRecord): void {
    const file = path.join(this.instanceDir(record.id), RECORD_FILE);
    replaceFile(file, `${JSON.stringify(record, null, 2)}\n`, 0o644);
  }

  private async readRecord(id: string): Promise<InstanceRecord | undefined> {
    try {
      const record = JSON.parse(await readFile(path.join(this.instanceDir(id), RECORD_FILE), 'utf8')) as Partial<InstanceRecord>;
      if (typeof record.pid !== 'number' || record.id !== id) return undefined;
      return {
        id,
        pid: record.pid,
        address: String(record.address ?? this.options.address),
        created: String(record.created ?? ''),
        agentEntry: String(record.agentEntry ?? this.options.agentEntry),
      };
    } catch {
      return undefined;
    }
  }

  /** The recorded pid is alive and (where /proc tells) still runs the agent, not a process that reused it. */
  private isOurAgent(record: InstanceRecord): boolean {
    if (!pidAlive(record.pid)) return false;
    const cmdline = commandLine(record.pid);
    return cmdline === undefined || cmdline.includes(record.agentEntry);
  }

  private async runDelete(id: string, graceMs: number): Promise<void> {
    const dir = this.instanceDir(id);
    const record = await this.readRecord(id);
    if (record && this.isOurAgent(record)) {
      const { pid } = record;
      // Taken before the agent goes: its servers' kernels live in their own sessions and would be reparented.
      const family = descendants(pid);
      this.log.info({ instance: id, pid, graceMs }, 'stopping instance');
      signal(pid, 'SIGTERM');
      const deadline = Date.now() + graceMs;
      while (pidAlive(pid) && Date.now() < deadline) await sleep(50);
      if (pidAlive(pid)) this.log.warn({ instance: id, pid }, 'agent did not stop in time; killing it');
      signal(-pid, 'SIGKILL');
      for (const member of [pid, ...family]) signal(member, 'SIGKILL');
      const killDeadline = Date.now() + 5000;
      while ([pid, ...family].some(pidAlive) && Date.now() < killDeadline) await sleep(25);
    }
    // What users detached from their sessions (nohup, setsid, any environment) was reparented away from the agent but
    // stays in its session's cgroup under the instance's: a machine that is deleted takes such processes with it, so
    // this one does too. Without cgroups (not root), by their runtime dir on this instance's disk.
    const runtime = this.runtimeDir(id);
    const cgroups = process.getuid?.() === 0 ? detectCgroups() : undefined;
    if (cgroups) {
      const found = await killInstanceCgroup(cgroups, instanceCgroupName(id, dir), 0).catch((error: unknown) => {
        this.log.warn({ instance: id, err: (error as Error).message }, 'clearing the instance cgroup failed');
        return 0;
      });
      if (found > 0) this.log.info({ instance: id, processes: found }, 'killed processes left on the instance');
    }
    const stragglers = pidsByEnv('XDG_RUNTIME_DIR', (value) => value.startsWith(`${dir}${path.sep}`) || value.startsWith(`${runtime}${path.sep}`));
    if (stragglers.length > 0) this.log.info({ instance: id, processes: stragglers.length }, 'killing processes left on the instance');
    for (const straggler of stragglers) signal(straggler, 'SIGKILL');
    await rm(dir, { recursive: true, force: true });
    await rm(runtime, { recursive: true, force: true });
    this.log.info({ instance: id }, 'instance deleted');
  }
}

function toInstance(record: InstanceRecord): ProviderInstance {
  return { id: record.id, address: record.address, details: { pid: record.pid } };
}

/** The agent runs useradd/groupadd: make sure the sbin directories are searched. */
function withSbin(pathValue: string | undefined): string {
  const parts = (pathValue ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter(Boolean);
  for (const dir of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!parts.includes(dir)) parts.push(dir);
  return parts.join(':');
}

/** What the hub passes to `createLocalProvider`: pool.yaml's `provider` section plus the pool's data dir. */
export type LocalProviderFactoryConfig = LocalProviderConfig & {
  /** pool.yaml `dataDir`; instances go to `<dataDir>/instances` unless `scratchDir` is set. */
  readonly dataDir: string;
};

/**
 * Builds the local provider from pool.yaml; the hub's entry point for this engine.
 *
 * @example
 * const provider = createLocalProvider({ ...config.provider, dataDir: config.dataDir }, log);
 */
export function createLocalProvider(config: LocalProviderFactoryConfig, log?: Logger, overrides: Omit<LocalProviderOptions, 'scratchDir' | 'log'> = {}): LocalProvider {
  return new LocalProvider({
    ...overrides,
    scratchDir: config.scratchDir ?? path.join(config.dataDir, 'instances'),
    ...(log ? { log: log.child({ component: 'local-provider' }) } : {}),
  });
}
