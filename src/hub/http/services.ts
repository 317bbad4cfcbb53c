// What the HTTP layer (API and pages) may use from the hub: a narrow view, never the Hub object itself.
import type { Hono } from 'hono';
import type { Identity } from '../../protocol/gateway.js';
import type { IdentityService } from '../auth/identity.js';
import type { PoolHistory } from '../admin/history.js';
import type { Culler } from '../cull/index.js';
import type { EventLog } from '../events.js';
import type { InstancePool } from '../instances/pool.js';
import type { SessionManager } from '../sessions/manager.js';
import type { Store } from '../store/types.js';

export interface HubServices {
  readonly store: Store;
  readonly identities: IdentityService;
  readonly sessions: SessionManager;
  readonly pool: InstancePool;
  readonly events: EventLog;
  /** The idle culler: extensions, exemptions, warnings in server models. */
  readonly culler: Pick<Culler, 'extend' | 'setExempt' | 'isExempt' | 'pageSeen'>;
  /** The pool's size over the last day (the admin page's chart). */
  readonly history: Pick<PoolHistory, 'points'>;
  /** Tell gateways to forget cached identities (one user's, or all). */
  revoke(user?: string): void;
  readonly version: string;
  /** Browser login lifetime, in ms. */
  readonly cookieMaxAgeMs: number;
  /** How long `POST …/server` waits for the start before answering 202, in ms. */
  readonly spawnWaitMs: number;
}

/** Per-request values set by the authentication step. */
export interface HubEnv {
  Variables: {
    identity: Identity | null;
    /** True when the identity came from the login cookie (then unsafe methods need a same-origin request). */
    viaCookie: boolean;
    /** The API token the request authenticated with, if any (for `GET /hub/api/user`'s scopes and token id). */
    token: string | undefined;
  };
}

export type HubApp = Hono<HubEnv>;
