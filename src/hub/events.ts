// The hub's audit trail: every lifecycle change is logged and kept in the store (GET /hub/api/events).
import type { Logger } from '../lib/log.js';
import type { Store } from './store/types.js';

/** Kinds of events the hub records. */
export type EventKind =
  | 'instance.created' | 'instance.state' | 'instance.deleted'
  | 'instance.failed' | 'instance.drain' | 'instance.protect' | 'instance.repair_postponed' | 'instance.create_failed' | 'instance.join_refused' | 'instance.joined' | 'instance.unhealthy'
  | 'autoscale.decision'
  | 'session.placed' | 'session.queued' | 'session.state' | 'session.adopted' | 'session.lost' | 'session.notice'
  | 'session.cull_warning' | 'session.cull_withdrawn' | 'session.culled' | 'session.extended' | 'user.cull_exempt'
  | 'user.created' | 'user.deleted' | 'user.key_added' | 'user.login' | 'user.login_failed'
  | 'user.login_locked' | 'user.login_busy' | 'user.admin_access' | 'token.created' | 'token.deleted';

/** Where an event is about. */
export interface EventSubject {
  readonly user?: string;
  readonly instanceId?: string;
  /** Extra facts; never secrets. */
  readonly data?: Record<string, unknown>;
}

/**
 * Records events; a store failure is logged, never thrown at the caller.
 *
 * @example
 * const events = new EventLog(store, log);
 * events.record('instance.drain', 'i-2 is draining', { instanceId: 'i-2', data: { deadline: null } }); // logged, then stored
 */
export class EventLog {
  constructor(private readonly store: Store, private readonly log: Logger) {}

  /**
   * @example
   * events.record('instance.state', 'i-1 is ready', { instanceId: 'i-1', data: { from: 'starting', to: 'ready' } });
   */
  record(kind: EventKind, message: string, subject: EventSubject = {}): void {
    this.log.info({ event: kind, user: subject.user, instance: subject.instanceId, ...subject.data }, message);
    this.store
      .addEvent({
        time: new Date().toISOString(),
        kind,
        user: subject.user ?? null,
        instanceId: subject.instanceId ?? null,
        message,
        data: subject.data ?? {},
      })
      .catch((error: unknown) => this.log.error({ err: (error as Error).message }, 'could not store event'));
  }
}
