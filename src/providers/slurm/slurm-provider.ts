// Each instance is a Slurm job running the agent: `sbatch` of a generated script, the agent dials the hub from
// its compute node. The hub's side keeps one small record per instance (`<stateDir>/<id>.json`: its job id) and
// asks squeue which jobs still run.
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type { SlurmProviderConfig } from '../../config/schema.js';
import { replaceFile } from '../../lib/atomic-file.js';
import { createLogger, type Logger } from '../../lib/log.js';
import { AGENT_ENV, type AgentSettings } from '../../protocol/agent.js';
import type { DeleteOptions, InstanceGone, InstanceSpec, Provider, ProviderInstance } from '../provider.js';

/** Called once per instance whose job Slurm ended. */
type InstanceGoneListener = (instanceId: string, reason: string) => void;
import { lastError, runSlurm, type SlurmCommandContext } from './commands.js';
import { InvalidSlurmInstanceIdError, SbatchRejectedError, SlurmCommandError, SlurmProviderClosedError, SlurmUnavailableError } from './errors.js';
import { batchScript, goneReason, jobAlive, parseSqueue, sbatchArgs, SQUEUE_FORMAT, type JobStatus } from './job.js';

/** Options of `SlurmProvider`; `slurmProviderDefaults` fills them in. */
export interface SlurmProviderOptions {
  /** Hub-side directory of the provider's records (one JSON file per instance: its job id); created if missing. */
  readonly stateDir: string;
  /** @default null (the cluster's default partition) */
  readonly partition?: string | null;
  /** @default null (the submitter's default account) */
  readonly account?: string | null;
  /** Slurm time limit of each job, e.g. `8:00:00`. @default null (the partition's) */
  readonly timeLimit?: string | null;
  /** `--gres` of each job, e.g. `gpu:1`. @default null */
  readonly gres?: string | null;
  /** More sbatch arguments. @default [] */
  readonly extraArgs?: readonly string[];
  /** Address the agent binds to on its node (`auto`: the node's first non-loopback IPv4). @default 'auto' */
  readonly address?: string;
  /** Node-local parent of each instance's disk. @default '/var/tmp/dspool' */
  readonly scratchDir?: string;
  /** Node.js on the compute nodes. @default this process's `process.execPath` */
  readonly node?: string;
  /** The agent's entry on the compute nodes. @default this package's `dist/agent/main.js` */
  readonly agentEntry?: string;
  /** slurm.conf for the commands (`SLURM_CONF`). @default null (Slurm's default) */
  readonly slurmConf?: string | null;
  /** How often `watch` asks squeue, in ms (doubled while the controller does not answer, up to 5 minutes). @default 10000 */
  readonly pollIntervalMs?: number;
  /** Longest a Slurm command may take, in ms. @default 30000 */
  readonly commandTimeoutMs?: number;
  /** Grace period of `delete` when the caller gives none, in ms. @default 10000 */
  readonly deleteGraceMs?: number;
  /** @default a pino logger named `slurm-provider` */
  readonly log?: Logger;
}

/** `SlurmProviderOptions` with every default filled in. */
export type ResolvedSlurmProviderOptions = { readonly [K in keyof SlurmProviderOptions]-?: Exclude<SlurmProviderOptions[K], undefined> };

/** Longest pause between squeue attempts while the controller does not answer, in ms. */
const MAX_POLL_BACKOFF_MS = 5 * 60_000;
/** How often, and how far apart, a COMPLETING job is asked about again for its final state before it is reported. */
const COMPLETING_RECHECKS = 10;
const COMPLETING_RECHECK_MS = 300;

function defaultAgentEntry(): string {
  const candidates = [
    fileURLToPath(new URL('../../agent/main.js', import.meta.url)),
    fileURLToPath(new URL('../../../dist/agent/main.js', import.meta.url)),
  ];
  return candidates.find((candidate) => existsSync(candidate)) ?? candidates[0] ?? '';
}

/**
 * Fills in every default of `SlurmProviderOptions`; the only place they live.
 *
 * @example
 * slurmProviderDefaults({ stateDir: '/var/lib/dspool/slurm' }).pollIntervalMs; // 10000
 */
export function slurmProviderDefaults(options: SlurmProviderOptions): ResolvedSlurmProviderOptions {
  return {
    stateDir: path.resolve(options.stateDir),
    partition: options.partition ?? null,
    account: options.account ?? null,
    timeLimit: options.timeLimit ?? null,
    gres: options.gres ?? null,
    extraArgs: options.extraArgs ?? [],
    address: options.address ?? 'auto',
    scratchDir: options.scratchDir ?? '/var/tmp/dspool',
    node: options.node ?? process.execPath,
    agentEntry: options.agentEntry ?? defaultAgentEntry(),
    slurmConf: options.slurmConf ?? null,
    pollIntervalMs: options.pollIntervalMs ?? 10_000,
    commandTimeoutMs: options.commandTimeoutMs ?? 30_000,
    deleteGraceMs: options.deleteGraceMs ?? 10_000,
    log: options.log ?? createLogger('slurm-provider'),
  };
}

/** What `create` writes to `<stateDir>/<id>.json`. */
export interface SlurmRecord {
  readonly id: string;
  readonly jobId: string;
  /** ISO-8601. */
  readonly created: string;
}

/**
 * States of the provider.
 * - `open`: submits, cancels and lists jobs; `watch` polls squeue.
 * - `closed`: `close()` was called; jobs keep running, polling stopped, new calls are refused.
 */
export type SlurmProviderState = 'open' | 'closed';

const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

/**
 * Runs each instance as a Slurm job. It leaves out the compute nodes' setup (Node.js and dspool installed at the
 * same paths, the share mounted or mountable) and owns no long connection: every call runs a Slurm command.
 * A controller that does not answer makes calls fail with `SlurmUnavailableError`, never reports a loss.
 *
 * @example
 * const provider = new SlurmProvider({ stateDir: '/var/lib/dspool/slurm', partition: 'gpu', timeLimit: '8:00:00' });
 * await provider.create({ id: 'i-1', hubUrl, joinToken, settings });
 */
export class SlurmProvider implements Provider {
  readonly type = 'slurm';
  private readonly options: ResolvedSlurmProviderOptions;
  private readonly log: Logger;
  private readonly ctx: SlurmCommandContext;
  private current: SlurmProviderState = 'open';
  private readonly deleting = new Map<string, Promise<void>>();
  private listener: InstanceGoneListener | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private pollDelayMs: number;
  /** True while the controller is not answering (so it is logged once per outage). */
  private outage = false;

  constructor(options: SlurmProviderOptions) {
    this.options = slurmProviderDefaults(options);
    this.log = this.options.log;
    this.pollDelayMs = this.options.pollIntervalMs;
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (this.options.slurmConf) env.SLURM_CONF = this.options.slurmConf;
    this.ctx = { env, timeoutMs: this.options.commandTimeoutMs };
  }

  get state(): SlurmProviderState {
    return this.current;
  }

  async create(spec: InstanceSpec): Promise<ProviderInstance> {
    this.assertOpen('create an instance');
    if (!INSTANCE_ID.test(spec.id)) throw new InvalidSlurmInstanceIdError(spec.id);
    const scratchDir = path.posix.join(this.options.scratchDir, spec.id);
    const settings: AgentSettings = { ...spec.settings, address: this.options.address, scratchDir };
    const job = {
      instanceId: spec.id, partition: this.options.partition, account: this.options.account, timeLimit: this.options.timeLimit,
      gres: this.options.gres, extraArgs: this.options.extraArgs, scratchDir,
      outputFile: path.posix.join(this.options.scratchDir, `${spec.id}.out`), node: this.options.node, agentEntry: this.options.agentEntry,
    };
    // The job takes these from sbatch's environment (`--export` names them): the token is never an argument.
    const env: NodeJS.ProcessEnv = {
      ...this.ctx.env,
      PATH: withSbin(process.env.PATH),
      LANG: process.env.LANG ?? 'C.UTF-8',
      [AGENT_ENV.hubUrl]: spec.hubUrl,
      [AGENT_ENV.instanceId]: spec.id,
      [AGENT_ENV.joinToken]: spec.joinToken,
      [AGENT_ENV.settings]: JSON.stringify(settings),
    };
    const result = await runSlurm({ ...this.ctx, env }, 'sbatch', sbatchArgs(job), batchScript(job));
    const jobId = /^(\d+)/.exec(result.stdout.trim())?.[1];
    if (result.code !== 0 || !jobId) throw new SbatchRejectedError(spec.id, lastError(result.stderr || result.stdout));
    const record: SlurmRecord = { id: spec.id, jobId, created: new Date().toISOString() };
    await this.writeRecord(record);
    this.log.info({ instance: spec.id, job: jobId }, 'instance job submitted');
    return toInstance(record, undefined);
  }

  delete(id: string, options: DeleteOptions = {}): Promise<void> {
    this.assertOpen('delete an instance');
    if (!INSTANCE_ID.test(id)) return Promise.resolve();
    let running = this.deleting.get(id);
    if (!running) {
      running = this.runDelete(id, options.graceMs ?? this.options.deleteGraceMs).finally(() => this.deleting.delete(id));
      this.deleting.set(id, running);
    }
    return running;
  }

  async list(): Promise<ProviderInstance[]> {
    this.assertOpen('list instances');
    const records = await this.records();
    if (records.length === 0) return [];
    const jobs = await this.queue();
    const out: ProviderInstance[] = [];
    for (const record of records) {
      const job = jobs.get(record.jobId);
      if (job && jobAlive(job.state)) {
        if (!this.deleting.has(record.id)) out.push(toInstance(record, job));
      } else if (!this.deleting.has(record.id)) {
        await this.removeRecord(record.id);
      }
    }
    return out;
  }

  /** Polls squeue every `pollIntervalMs` and reports each instance whose job ended; backs off while Slurm is silent. */
  watchGone(listener: (gone: InstanceGone) => void): () => void {
    this.assertOpen('watch instances');
    const mine: InstanceGoneListener = (id, reason) => listener({ id, reason });
    this.listener = mine;
    this.schedulePoll(this.options.pollIntervalMs);
    return () => {
      if (this.listener === mine) this.listener = undefined;
    };
  }

  /** Stops polling; jobs keep running (a restarted hub re-adopts them through `list`). Safe to call twice. */
  async close(): Promise<void> {
    if (this.current === 'closed') return;
    this.current = 'closed';
    clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    this.listener = undefined;
  }

  /** One squeue pass: instances whose jobs are gone are reported (exported for tests). @internal */
  async poll(): Promise<void> {
    const listener = this.listener;
    if (!listener || this.current !== 'open') return;
    let jobs: Map<string, JobStatus>;
    try {
      jobs = await this.queue();
    } catch (error) {
      if (!(error instanceof SlurmUnavailableError)) throw error;
      this.pollDelayMs = Math.min(MAX_POLL_BACKOFF_MS, this.pollDelayMs * 2);
      if (!this.outage) this.log.warn({ err: error.message, retryMs: this.pollDelayMs }, 'Slurm does not answer; instances are kept as they are, asking again with back-off');
      this.outage = true;
      return;
    }
    if (this.outage) this.log.info('Slurm answers again');
    this.outage = false;
    this.pollDelayMs = this.options.pollIntervalMs;
    for (const record of await this.records()) {
      if (this.deleting.has(record.id)) continue;
      let job = jobs.get(record.jobId);
      if (job && jobAlive(job.state)) continue;
      // COMPLETING: the job is ending (its agent is gone) but Slurm has not yet said how it ended; the final state
      // (CANCELLED, TIMEOUT, NODE_FAIL …) is the reason people read, and it follows within moments.
      for (let asked = 0; job?.state.toUpperCase() === 'COMPLETING' && asked < COMPLETING_RECHECKS; asked++) {
        await sleep(COMPLETING_RECHECK_MS);
        job = (await this.queue().catch(() => jobs)).get(record.jobId) ?? job;
      }
      const reason = goneReason(job?.state);
      this.log.warn({ instance: record.id, job: record.jobId, state: job?.state ?? 'unknown' }, reason);
      await this.removeRecord(record.id);
      listener(record.id, reason);
    }
  }

  private schedulePoll(delayMs: number): void {
    clearTimeout(this.pollTimer);
    if (this.current !== 'open') return;
    this.pollTimer = setTimeout(() => {
      this.poll()
        .catch((error: unknown) => this.log.error({ err: (error as Error).message }, 'polling Slurm failed'))
        .finally(() => this.schedulePoll(this.pollDelayMs));
    }, delayMs);
    this.pollTimer.unref();
  }

  private assertOpen(operation: string): void {
    if (this.current !== 'open') throw new SlurmProviderClosedError(operation, this.current);
  }

  /** Every job squeue knows (finished ones too, while Slurm keeps them), by job id. */
  private async queue(): Promise<Map<string, JobStatus>> {
    const result = await runSlurm(this.ctx, 'squeue', ['-h', '-a', '--states=all', '-o', SQUEUE_FORMAT]);
    if (result.code !== 0) throw new SlurmCommandError('squeue', lastError(result.stderr));
    return new Map(parseSqueue(result.stdout).map((job) => [job.jobId, job]));
  }

  private async runDelete(id: string, graceMs: number): Promise<void> {
    const record = await this.readRecord(id);
    if (!record) return;
    const state = (await this.queue()).get(record.jobId)?.state;
    if (state && jobAlive(state)) {
      this.log.info({ instance: id, job: record.jobId, graceMs }, 'stopping instance job');
      if (state === 'RUNNING') {
        // The batch shell forwards SIGTERM to the agent, which stops its servers; then the job ends on its own.
        await runSlurm(this.ctx, 'scancel', ['--batch', '--signal=TERM', record.jobId]);
        const deadline = Date.now() + graceMs;
        while (Date.now() < deadline) {
          const now = (await this.queue()).get(record.jobId)?.state;
          if (!now || !jobAlive(now)) break;
          await sleep(250);
        }
      }
      const cancelled = await runSlurm(this.ctx, 'scancel', [record.jobId]);
      if (cancelled.code !== 0 && !/already completing|completed|Invalid job id/i.test(cancelled.stderr)) {
        throw new SlurmCommandError('scancel', lastError(cancelled.stderr));
      }
    }
    await this.removeRecord(id);
    this.log.info({ instance: id, job: record.jobId }, 'instance job ended');
  }

  private recordFile(id: string): string {
    return path.join(this.options.stateDir, `${id}.json`);
  }

  private async writeRecord(record: SlurmRecord): Promise<void> {
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
    const file = this.recordFile(record.id);
    replaceFile(file, `${JSON.stringify(record, null, 2)}\n`, 0o600);
  }

  private async removeRecord(id: string): Promise<void> {
    await rm(this.recordFile(id), { force: true });
  }

  private async readRecord(id: string): Promise<SlurmRecord | undefined> {
    try {
      const record = JSON.parse(await readFile(this.recordFile(id), 'utf8')) as Partial<SlurmRecord>;
      if (record.id !== id || typeof record.jobId !== 'string') return undefined;
      return { id, jobId: record.jobId, created: String(record.created ?? '') };
    } catch {
      return undefined;
    }
  }

  private async records(): Promise<SlurmRecord[]> {
    let entries: string[];
    try {
      entries = await readdir(this.options.stateDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const out: SlurmRecord[] = [];
    for (const entry of entries.sort()) {
      if (!entry.endsWith('.json')) continue;
      const record = await this.readRecord(entry.slice(0, -5));
      if (record) out.push(record);
    }
    return out;
  }
}

function toInstance(record: SlurmRecord, job: JobStatus | undefined): ProviderInstance {
  // The node's address is known once its agent joins (it reports it in `hello`).
  return { id: record.id, address: '', details: { job_id: record.jobId, ...(job?.nodes ? { node: job.nodes } : {}) } };
}

function withSbin(pathValue: string | undefined): string {
  const parts = (pathValue ?? '/usr/local/bin:/usr/bin:/bin').split(':').filter(Boolean);
  for (const dir of ['/usr/local/sbin', '/usr/sbin', '/sbin']) if (!parts.includes(dir)) parts.push(dir);
  return parts.join(':');
}

/** What the hub passes to `createSlurmProvider`: pool.yaml's `provider` section plus the pool's data dir. */
export type SlurmProviderFactoryConfig = SlurmProviderConfig & { readonly dataDir: string };

/**
 * Builds the Slurm provider from pool.yaml; the hub's entry point for this engine.
 *
 * @example
 * const provider = createSlurmProvider({ ...config.provider, dataDir: config.dataDir }, log);
 */
export function createSlurmProvider(config: SlurmProviderFactoryConfig, log?: Logger): SlurmProvider {
  return new SlurmProvider({
    stateDir: path.join(config.dataDir, 'slurm'),
    partition: config.partition,
    account: config.account,
    timeLimit: config.timeLimit,
    gres: config.gres,
    extraArgs: config.extraArgs,
    address: config.address,
    scratchDir: config.scratchDir,
    ...(config.node ? { node: config.node } : {}),
    ...(config.agentEntry ? { agentEntry: config.agentEntry } : {}),
    slurmConf: config.slurmConf,
    pollIntervalMs: config.pollInterval,
    ...(log ? { log: log.child({ component: 'slurm-provider' }) } : {}),
  });
}
