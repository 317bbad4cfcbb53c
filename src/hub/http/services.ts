// What the HTTP layer (API and pages) may use from the hub: a narrow view, never the Hub object itself.
import type { Hono } from 'hono';
import type { Identity } from '../../protocol/gateway.js';
import type { Caller, IdentityService } from '../auth/identity.js';
import type { LoginGuard } from '../auth/login-guard.js';
import type { UserHostLogins } from '../auth/user-host.js';
import type { AccountPolicy } from '../auth/account-policy.js';
import type { PoolHistory } from '../admin/history.js';
import type { Culler } from '../cull/index.js';
import type { EventLog } from '../events.js';
import type { InstancePool } from '../instances/pool.js';
import type { SessionManager } from '../sessions/manager.js';
import type { Store } from '../store/types.js';

export interface HubServices {
  readonly store: Store;
  readonly identities: IdentityService;
  /** Every password check (web and SSH) goes through it: limits per user and address, a gate for argon2. */
  readonly logins: LoginGuard;
  /** `gateway.userHost` (`"{user}.pool.example"`), or null when every server is on the hub's origin. */
  readonly userHost: string | null;
  /** The user-host handshake's codes and logins (used only with `userHost`). */
  readonly hostLogins: UserHostLogins;
  /** The gateway secret: proves the client address the gateway forwards (`CLIENT_ADDRESS_HEADER`). */
  readonly gatewaySecret: string;
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
  /** Largest request body read (pool.yaml `hub.maxBodySize`), in bytes; larger gets 413. */
  readonly maxBodyBytes: number;
  /** Which new account names and passwords are accepted. */
  readonly accounts: AccountPolicy;
  /** Someone means to work (a login): the autoscaler wakes the pool for them. A no-op without autoscaling. */
  intent(user: string, kind: 'login'): void;
}

/** Per-request values set by the authentication step. */
export interface HubEnv {
  Variables: {
    /** Who is calling and what this credential may do; null for no (or, on pages, a restricted) credential. */
    caller: Caller | null;
    /** `caller.identity`, for the pages. */
    identity: Identity | null;
    /** True when the identity came from the login cookie (then unsafe methods need a same-origin request). */
    viaCookie: boolean;
    /** The API token the request authenticated with, if any (for `GET /hub/api/user`'s scopes and token id). */
    token: string | undefined;
  };
}

export type HubApp = Hono<HubEnv>;
