// Existing machines as instances. `create` makes an instance that waits for a machine; a machine listed in
// pool.yaml `provider.hosts` claims one when its agent joins (`dspool agent join`). Each instance is one file
// `<stateDir>/<id>.json` (0600: it holds the instance's credential until a machine claims it, and after).
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { StaticProviderConfig } from '../../config/schema.js';
import { replaceFile } from '../../lib/atomic-file.js';
import { createLogger, type Logger } from '../../lib/log.js';
import type { ClaimedInstance, DeleteOptions, InstanceSpec, Provider, ProviderInstance } from '../provider.js';
import { HostNotListedError, InvalidStaticInstanceIdError, NoFreeInstanceError, StaticProviderClosedError } from './errors.js';

/** Options of `StaticProvider`; `staticProviderDefaults` fills them in. */
export interface StaticProviderOptions {
  /** Hub-side directory of the instances' records; created if missing (0700). */
  readonly stateDir: string;
  /** Addresses of the machines that may join. */
  readonly hosts: readonly string[];
  /** @default a pino logger named `static-provider` */
  readonly log?: Logger;
}

export type ResolvedStaticProviderOptions = Required<StaticProviderOptions>;

/**
 * Fills in every default of `StaticProviderOptions`; the only place they live.
 *
 * @example
 * staticProviderDefaults({ stateDir: '/var/lib/dspool/static', hosts: ['10.0.0.5'] }).hosts; // ['10.0.0.5']
 */
export function staticProviderDefaults(options: StaticProviderOptions): ResolvedStaticProviderOptions {
  return { stateDir: path.resolve(options.stateDir), hosts: [...options.hosts], log: options.log ?? createLogger('static-provider') };
}

/** One instance's record. */
interface Slot {
  readonly id: string;
  readonly joinToken: string;
  readonly settings: InstanceSpec['settings'];
  /** The machine holding it; null while it waits for one. */
  readonly host: string | null;
  readonly created: string;
}

/**
 * States of the provider.
 * - `open`: makes, claims and deletes instances.
 * - `closed`: `close()` was called; calls are refused.
 */
export type StaticProviderState = 'open' | 'closed';

const INSTANCE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/**
 * Machines that already exist. It leaves out starting and stopping them (an operator or systemd does) and owns no
 * connection; deleting an instance only forgets it (its agent is refused from then on and joins again as a new
 * instance with its host credential).
 *
 * @example
 * const provider = new StaticProvider({ stateDir: '/var/lib/dspool/static', hosts: ['10.0.0.5', '10.0.0.6'] });
 * await provider.create(spec);           // waits for a machine
 * await provider.claim('10.0.0.5');      // the machine's agent joined: it gets that instance
 */
export class StaticProvider implements Provider {
  readonly type = 'static';
  private readonly options: ResolvedStaticProviderOptions;
  private current: StaticProviderState = 'open';
  /** Claims run one at a time, so two machines never get the same instance. */
  private claiming: Promise<unknown> = Promise.resolve();

  constructor(options: StaticProviderOptions) {
    this.options = staticProviderDefaults(options);
  }

  get state(): StaticProviderState {
    return this.current;
  }

  async create(spec: InstanceSpec): Promise<ProviderInstance> {
    this.assertOpen('create an instance');
    if (!INSTANCE_ID.test(spec.id)) throw new InvalidStaticInstanceIdError(spec.id);
    const slot: Slot = { id: spec.id, joinToken: spec.joinToken, settings: spec.settings, host: null, created: new Date().toISOString() };
    await this.write(slot);
    this.options.log.info({ instance: spec.id }, 'instance waiting for a machine to join');
    return toInstance(slot);
  }

  async delete(id: string, _options: DeleteOptions = {}): Promise<void> {
    this.assertOpen('delete an instance');
    if (!INSTANCE_ID.test(id)) return;
    await rm(this.file(id), { force: true });
  }

  async list(): Promise<ProviderInstance[]> {
    this.assertOpen('list instances');
    return (await this.slots()).map(toInstance);
  }

  claim(host: string): Promise<ClaimedInstance> {
    this.assertOpen('claim an instance');
    const run = this.claiming.then(async () => {
      if (!this.options.hosts.includes(host)) throw new HostNotListedError(host, this.options.hosts);
      const slots = await this.slots();
      const holding = slots.find((slot) => slot.host === host);
      if (holding) throw new NoFreeInstanceError(host, holding.id);
      const free = slots.find((slot) => slot.host === null);
      if (!free) throw new NoFreeInstanceError(host, null);
      const claimed: Slot = { ...free, host };
      await this.write(claimed);
      this.options.log.info({ instance: free.id, host }, 'a machine joined');
      return { id: free.id, joinToken: free.joinToken, settings: free.settings, address: host };
    });
    this.claiming = run.catch(() => undefined);
    return run;
  }

  async close(): Promise<void> {
    this.current = 'closed';
  }

  private assertOpen(operation: string): void {
    if (this.current !== 'open') throw new StaticProviderClosedError(operation, this.current);
  }

  private file(id: string): string {
    return path.join(this.options.stateDir, `${id}.json`);
  }

  private async write(slot: Slot): Promise<void> {
    await mkdir(this.options.stateDir, { recursive: true, mode: 0o700 });
    const file = this.file(slot.id);
    replaceFile(file, `${JSON.stringify(slot)}\n`, 0o600);
  }

  private async slots(): Promise<Slot[]> {
    let entries: string[];
    try {
      entries = await readdir(this.options.stateDir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    const out: Slot[] = [];
    for (const entry of entries.sort()) {
      if (!entry.endsWith('.json')) continue;
      try {
        const slot = JSON.parse(await readFile(path.join(this.options.stateDir, entry), 'utf8')) as Slot;
        if (slot.id === entry.slice(0, -5)) out.push(slot);
      } catch {
        // a half-written record: ignored
      }
    }
    return out;
  }
}

function toInstance(slot: Slot): ProviderInstance {
  return { id: slot.id, address: slot.host ?? '', details: { host: slot.host ?? 'waiting for a machine to join' } };
}

/** What the hub passes to `createStaticProvider`. */
export type StaticProviderFactoryConfig = StaticProviderConfig & { readonly dataDir: string };

/**
 * Builds the static provider from pool.yaml.
 *
 * @example
 * const provider = createStaticProvider({ ...config.provider, dataDir: config.dataDir }, log);
 */
export function createStaticProvider(config: StaticProviderFactoryConfig, log?: Logger): StaticProvider {
  return new StaticProvider({
    stateDir: path.join(config.dataDir, 'static'),
    hosts: config.hosts,
    ...(log ? { log: log.child({ component: 'static-provider' }) } : {}),
  });
}
