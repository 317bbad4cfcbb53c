// The idle culler: keeps what each running session did (the agents' work reports, the gateway's person requests,
// extensions), asks `decideCull` every interval, and acts on its verdict: a warning on the user's open pages (the
// server model's notice) and SSH terminals (a wall line), withdrawn when work resumes; at the stop, open pages are
// asked to save and given a bounded time, then the server is stopped with the reason recorded for the next login.
// Extensions are kept on the session's record, so a restarted hub honours them; every action is counted in
// `dspool_cull_decisions_total{action}`.
import { Counter, type Registry } from 'prom-client';
import type { Logger } from '../../lib/log.js';
import { transitions } from '../../lib/state.js';
import type { ServerReport } from '../../protocol/agent.js';
import type { EventLog } from '../events.js';
import type { SessionRecord } from '../store/types.js';
import { decideCull, type CullPolicy, type CullVerdict, type GivenWarning } from './decide.js';
import { NoServerToExtendError } from './errors.js';

/**
 * Where one running session stands with the culler.
 * - `watching`: nothing said; its work is watched.
 * - `warned`: the user was told when it stops (pages, terminals); work or an extension withdraws it.
 * - `saving`: the warning ran out; open pages were asked to save and get `saveTimeoutMs` to do it.
 * - `stopping`: the server is being stopped (the record gets the reason).
 */
export type CullState = 'watching' | 'warned' | 'saving' | 'stopping';

const nextCullState = transitions<CullState>('cull', {
  watching: ['warned'],
  warned: ['watching', 'warned', 'saving'],
  saving: ['warned', 'watching', 'stopping'],
  stopping: [],
});

/** What the culler needs from the hub. */
export interface CullerContext {
  /** Running sessions now, with their profile (null: none named). */
  running(): ReadonlyArray<{ readonly record: SessionRecord; readonly profile: string | null }>;
  /** Stops the user's server with this reason (recorded on the session, shown at the next login). */
  stop(user: string, reason: string): Promise<void>;
  /** Writes a line on the user's SSH terminals on that instance. */
  notify(instanceId: string, user: string, message: string): Promise<void>;
  /** The cull policy of a profile (its timeout, or the pool's). */
  policyOf(profile: string | null): CullPolicy;
  /** Users an admin exempted, kept across hub restarts. */
  readonly exemptions: { load(): Promise<readonly string[]>; save(users: readonly string[]): Promise<void> };
  /**
   * Keeps a session's extension (ISO-8601) on its record, so it outlives a hub restart; the record's
   * `extendedUntil` is read back when the culler first sees the session.
   */
  keepExtension(sessionId: string, until: string): Promise<void>;
  /** Where the culler's Prometheus metric is registered. */
  readonly registry: Registry;
  readonly events: EventLog;
  readonly log: Logger;
  /** How long open pages get to save before the stop, in ms. */
  readonly saveTimeoutMs: number;
  /** How often sessions are checked, in ms. */
  readonly intervalMs: number;
  /** The clock (injected so tests can move it). */
  readonly now: () => number;
}

/** The culler's fields of a session's server model. */
export interface CullFields {
  /** The warning shown as a banner on the user's pages. */
  readonly notice: string | null;
  /** When the session stops unless used (ISO-8601), while warned. */
  readonly cullAt: string | null;
  /** Open pages should save now: the stop is under way. */
  readonly saveRequested: boolean;
}

interface Watch {
  state: CullState;
  readonly user: string;
  readonly instanceId: string | null;
  warning: GivenWarning | undefined;
  extendedUntilMs: number | undefined;
  idleSinceMs: number;
}

/** How long `extend` keeps a server when the caller names no duration (the API, the pages' buttons), in ms. */
export const DEFAULT_EXTENSION_MS = 3_600_000;
/** The longest extension accepted, in ms. */
export const MAX_EXTENSION_MS = 7 * 86_400_000;

/** Pages that polled this recently are taken to be open (they poll at least every 10 s, 30 s after an error). */
const PAGE_OPEN_MS = 45_000;

/**
 * What the culler did, as counted in `dspool_cull_decisions_total{action}`: `warn` (a warning given or moved),
 * `withdraw` (work resumed or extended), `cull` (a session stopped for no work), `called_off` (used while its pages
 * saved), `extend` (`dspool extend`, the pages' button).
 */
export type CullAction = 'warn' | 'withdraw' | 'cull' | 'called_off' | 'extend';

/** Formats epoch ms as `HH:MM:SS UTC`. */
const clock = (ms: number): string => `${new Date(ms).toISOString().slice(11, 19)} UTC`;

/**
 * "1 h", "10 min", "45 s" for people.
 *
 * @example
 * humanDuration(3_600_000); // '1 h'
 * humanDuration(5_400_000); // '90 min'
 * humanDuration(45_000); // '45 s'
 */
export function humanDuration(ms: number): string {
  if (ms >= 3_600_000 && ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms >= 60_000) return `${Math.round(ms / 60_000)} min`;
  return `${Math.round(ms / 1000)} s`;
}

/**
 * Watches running sessions for idleness and stops those that did no work for their profile's timeout, after a
 * warning.
 *
 * @example
 * const culler = new Culler({ running, stop, notify, policyOf, exemptions, keepExtension, registry, events, log, saveTimeoutMs: 15_000, intervalMs: 15_000, now: Date.now });
 * await culler.start();
 * connection.on('heartbeat', (beat) => culler.report(beat.servers));
 */
export class Culler {
  private readonly watches = new Map<string, Watch>();
  /** Work the agents last reported, by session (kept apart from the watches: reports may come first). */
  private readonly work = new Map<string, { busy: boolean; lastWorkMs: number | undefined }>();
  /** Last request a person made to each user's server. */
  private readonly requests = new Map<string, number>();
  private readonly pagesSeen = new Map<string, number>();
  private exempt = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private readonly decisions: Counter<'action'>;

  constructor(private readonly ctx: CullerContext) {
    this.decisions = new Counter({
      name: 'dspool_cull_decisions_total', help: 'Idle culler actions: warn, withdraw, cull (a session stopped for no work), called_off, extend.',
      labelNames: ['action'], registers: [ctx.registry],
    });
    for (const action of ['warn', 'withdraw', 'cull', 'called_off', 'extend'] satisfies CullAction[]) this.decisions.inc({ action }, 0);
  }

  /** Loads the exemptions and starts checking every `intervalMs`. */
  async start(): Promise<void> {
    this.exempt = new Set(await this.ctx.exemptions.load());
    this.timer ??= setInterval(() => this.check(), this.ctx.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** An agent's report of its servers' work (hello and every heartbeat). */
  report(servers: readonly ServerReport[]): void {
    for (const server of servers) {
      if (server.work === undefined) continue;
      const at = server.work.lastWork ? Date.parse(server.work.lastWork) : Number.NaN;
      const before = this.work.get(server.sessionId)?.lastWorkMs;
      this.work.set(server.sessionId, {
        busy: server.work.kernelsExecuting + server.work.foreground > 0,
        lastWorkMs: Number.isFinite(at) ? Math.max(before ?? 0, at) : before,
      });
    }
  }

  /** A person made a request to `user`'s server at `atMs` (from the gateway). */
  personRequest(user: string, atMs: number): void {
    this.requests.set(user, Math.max(this.requests.get(user) ?? 0, atMs));
  }

  /** One of `user`'s Jupyter pages polled the hub (so it is open and can save when asked). */
  pageSeen(user: string): void {
    this.pagesSeen.set(user, this.ctx.now());
  }

  /**
   * Keeps the user's running session for `forMs` from now whatever it does, withdrawing a warning at once.
   * Throws `NoServerToExtendError` when the user has no running server.
   *
   * @example
   * culler.extend('alice', 3_600_000); // { extendedUntil: '…', cullAt: null }
   */
  extend(user: string, forMs: number): { extendedUntil: string; cullAt: string | null } {
    const entry = this.ctx.running().find((r) => r.record.user === user);
    if (!entry) throw new NoServerToExtendError(user);
    const watch = this.watchOf(entry.record);
    const until = this.ctx.now() + forMs;
    watch.extendedUntilMs = Math.max(watch.extendedUntilMs ?? 0, until);
    this.decisions.inc({ action: 'extend' });
    const kept = new Date(watch.extendedUntilMs).toISOString();
    this.ctx.keepExtension(entry.record.id, kept).catch((error: unknown) =>
      this.ctx.log.warn({ session: entry.record.id, err: (error as Error).message }, 'could not keep the extension in the store'),
    );
    this.ctx.events.record('session.extended', `${user} kept their server until ${clock(watch.extendedUntilMs)}`, {
      user, instanceId: watch.instanceId ?? undefined, data: { session: entry.record.id, until: new Date(watch.extendedUntilMs).toISOString() },
    });
    this.checkOne(entry.record, entry.profile);
    return { extendedUntil: new Date(watch.extendedUntilMs).toISOString(), cullAt: watch.warning ? new Date(watch.warning.cullAtMs).toISOString() : null };
  }

  /** Exempts a user from culling (or lifts it); kept across restarts. */
  async setExempt(user: string, exempt: boolean): Promise<void> {
    if (exempt === this.exempt.has(user)) return;
    if (exempt) this.exempt.add(user);
    else this.exempt.delete(user);
    await this.ctx.exemptions.save([...this.exempt].sort());
    for (const entry of this.ctx.running()) if (entry.record.user === user) this.checkOne(entry.record, entry.profile);
  }

  isExempt(user: string): boolean {
    return this.exempt.has(user);
  }

  /** The culler's fields of a session's server model. */
  fieldsOf(sessionId: string): CullFields {
    const watch = this.watches.get(sessionId);
    if (!watch?.warning) return { notice: null, cullAt: null, saveRequested: false };
    const { cullAtMs } = watch.warning;
    const notice = watch.state === 'saving' || watch.state === 'stopping'
      ? 'This server did no work for its idle timeout and is stopping now; open notebooks are being saved.'
      : `This server has done no work since ${clock(watch.idleSinceMs)} and will be stopped at ${clock(cullAtMs)} to free the pool (open notebooks are saved first). Run something, or keep it running (the button, or dspool extend).`;
    return { notice, cullAt: new Date(cullAtMs).toISOString(), saveRequested: watch.state === 'saving' };
  }

  /** Checks every running session once (the timer calls this). */
  check(): void {
    const running = this.ctx.running();
    const ids = new Set(running.map((r) => r.record.id));
    for (const id of this.watches.keys()) if (!ids.has(id)) this.watches.delete(id);
    for (const id of this.work.keys()) if (!ids.has(id)) this.work.delete(id);
    for (const { record, profile } of running) this.checkOne(record, profile);
  }

  private watchOf(record: SessionRecord): Watch {
    let watch = this.watches.get(record.id);
    if (!watch) {
      // An extension given before a hub restart is on the record.
      const extendedMs = record.extendedUntil ? Date.parse(record.extendedUntil) : Number.NaN;
      watch = {
        state: 'watching', user: record.user, instanceId: record.instanceId, warning: undefined,
        extendedUntilMs: Number.isFinite(extendedMs) ? extendedMs : undefined, idleSinceMs: Date.parse(record.started),
      };
      this.watches.set(record.id, watch);
    }
    return watch;
  }

  private verdict(record: SessionRecord, profile: string | null, watch: Watch, requestsUpToMs?: number): CullVerdict {
    const requested = this.requests.get(record.user);
    const lastRequestMs = requestsUpToMs === undefined || requested === undefined ? requested : Math.min(requested, requestsUpToMs);
    const work = this.work.get(record.id);
    return decideCull(
      {
        // The moment it became running (`lastActivity` is set then), not when it was asked for.
        startedMs: Date.parse(record.lastActivity ?? record.started), busy: work?.busy ?? false, lastWorkMs: work?.lastWorkMs, lastRequestMs,
        extendedUntilMs: watch.extendedUntilMs, exempt: this.exempt.has(record.user),
      },
      this.ctx.policyOf(profile),
      watch.warning,
      this.ctx.now(),
    );
  }

  private move(watch: Watch, to: CullState): void {
    watch.state = nextCullState(watch.state, to);
  }

  private checkOne(record: SessionRecord, profile: string | null): void {
    const watch = this.watchOf(record);
    if (watch.state === 'saving' || watch.state === 'stopping') return;
    const verdict = this.verdict(record, profile, watch);
    watch.idleSinceMs = verdict.idleSinceMs;
    switch (verdict.action) {
      case 'keep':
        if (verdict.withdraw) this.withdraw(record, watch, verdict.reason);
        return;
      case 'warn':
        this.warn(record, profile, watch, verdict.cullAtMs);
        return;
      case 'cull':
        void this.cull(record, profile, watch).catch((error: unknown) =>
          this.ctx.log.error({ session: record.id, err: (error as Error).message }, 'culling a session failed'),
        );
    }
  }

  private warn(record: SessionRecord, profile: string | null, watch: Watch, cullAtMs: number): void {
    const first = watch.warning === undefined;
    watch.warning = { warnedAtMs: first ? this.ctx.now() : (watch.warning?.warnedAtMs ?? this.ctx.now()), cullAtMs };
    this.move(watch, 'warned');
    this.decisions.inc({ action: 'warn' });
    const timeout = this.ctx.policyOf(profile).idleTimeoutMs ?? 0;
    const message = `${record.user}'s server has done no work since ${clock(watch.idleSinceMs)}; it will be stopped at ${clock(cullAtMs)} unless used or extended`;
    this.ctx.events.record('session.cull_warning', message, {
      user: record.user, instanceId: record.instanceId ?? undefined,
      data: { session: record.id, idle_since: new Date(watch.idleSinceMs).toISOString(), cull_at: new Date(cullAtMs).toISOString(), timeout_ms: timeout, profile },
    });
    const line = `This session has done no work since ${clock(watch.idleSinceMs)} and will be stopped at ${clock(cullAtMs)} (idle timeout ${humanDuration(timeout)}). Type something or run a command to keep it, or run: dspool extend`;
    this.tell(record, line);
  }

  private withdraw(record: SessionRecord, watch: Watch, reason: string): void {
    watch.warning = undefined;
    this.move(watch, 'watching');
    this.decisions.inc({ action: 'withdraw' });
    this.ctx.events.record('session.cull_withdrawn', `${record.user}'s server is in use again (${reason}); it will not be stopped`, {
      user: record.user, instanceId: record.instanceId ?? undefined, data: { session: record.id, reason },
    });
    this.tell(record, 'This session is in use again; it will not be stopped.');
  }

  private async cull(record: SessionRecord, profile: string | null, watch: Watch): Promise<void> {
    this.move(watch, 'saving');
    const savingSinceMs = this.ctx.now();
    const pageSeenMs = this.pagesSeen.get(record.user);
    if (pageSeenMs !== undefined && savingSinceMs - pageSeenMs < PAGE_OPEN_MS) {
      // Open pages see `save_requested` on their next poll (every 2 s while warned) and save their notebooks.
      await new Promise((resolve) => setTimeout(resolve, this.ctx.saveTimeoutMs));
    }
    // The user may have extended or started work meanwhile (the pages' own saves do not count).
    const verdict = this.verdict(record, profile, watch, savingSinceMs);
    if (verdict.action !== 'cull') {
      watch.warning = undefined;
      this.move(watch, 'watching');
      this.decisions.inc({ action: 'called_off' });
      this.ctx.log.info({ session: record.id, verdict: verdict.action }, 'cull called off: the session was used while saving');
      return;
    }
    this.move(watch, 'stopping');
    this.decisions.inc({ action: 'cull' });
    const timeout = this.ctx.policyOf(profile).idleTimeoutMs ?? 0;
    const reason = `stopped because it did no work for ${humanDuration(timeout)} (idle since ${new Date(verdict.idleSinceMs).toISOString()}): no kernel executing, no terminal or SSH work, no page you opened`;
    this.ctx.events.record('session.culled', `${record.user}'s server ${reason}`, {
      user: record.user, instanceId: record.instanceId ?? undefined,
      data: { session: record.id, idle_ms: verdict.idleMs, timeout_ms: timeout, profile, warned_at: watch.warning ? new Date(watch.warning.warnedAtMs).toISOString() : null },
    });
    await this.ctx.stop(record.user, reason);
  }

  private tell(record: SessionRecord, line: string): void {
    if (!record.instanceId) return;
    this.ctx.notify(record.instanceId, record.user, line).catch((error: unknown) =>
      this.ctx.log.warn({ user: record.user, err: (error as Error).message }, 'could not write the cull notice on SSH terminals'),
    );
  }
}
