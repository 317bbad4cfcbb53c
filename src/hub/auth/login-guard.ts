// Every password check of the hub, for the web login and the SSH front door alike, goes through one
// `LoginLimiter`: failures count per (user, address) pair and per address, the argon2 work is gated, and every
// failure, lock and refusal is audited as an event.
import { LoginLimiter, type LoginLimitOptions } from '../../lib/login-limiter.js';
import type { EventLog } from '../events.js';
import type { IdentityService } from './identity.js';

/** Where a login attempt came in. */
export type LoginChannel = 'web' | 'ssh';

/**
 * Result of a guarded password check: `allowed` (with the new login cookie for the web), `denied` / `unknown`
 * (wrong password / no such user; both refused), `limited` (too many failures from that pair or address; not
 * checked), `busy` (the hub has too many checks waiting; not checked).
 */
export type GuardedLogin =
  | { readonly verdict: 'allowed'; readonly cookie?: string }
  | { readonly verdict: 'denied' | 'unknown' }
  | { readonly verdict: 'limited'; readonly retryAfterMs: number }
  | { readonly verdict: 'busy' };

/** What the guard needs from the hub. */
export interface LoginGuardContext {
  readonly identities: Pick<IdentityService, 'login' | 'checkPassword'>;
  readonly events: Pick<EventLog, 'record'>;
}

/** Minimum pause between two `user.login_busy` events, in ms (a flood must not flood the audit trail too). */
const BUSY_EVENT_INTERVAL_MS = 60_000;

/**
 * The hub's password checks under one limiter.
 *
 * @example
 * const guard = new LoginGuard({ identities, events }, config.hub.loginLimit);
 * const result = await guard.login('web', 'alice', password, '10.0.0.5');
 * if (result.verdict === 'allowed') setCookie(result.cookie);
 */
export class LoginGuard {
  readonly limiter: LoginLimiter;
  #lastBusyEvent = 0;

  constructor(private readonly ctx: LoginGuardContext, limits: LoginLimitOptions = {}) {
    this.limiter = new LoginLimiter(limits);
  }

  /**
   * Checks a password from `address`: for the web a successful check creates a login (its cookie is returned),
   * for SSH it only answers. Usernames must have been validated by the caller.
   */
  async login(via: LoginChannel, user: string, password: string, address: string): Promise<GuardedLogin> {
    const attempt = await this.limiter.attempt(
      user,
      address,
      async (): Promise<GuardedLogin> => {
        if (via === 'ssh') return { verdict: await this.ctx.identities.checkPassword(user, password) };
        const cookie = await this.ctx.identities.login(user, password);
        return cookie === null ? { verdict: 'denied' } : { verdict: 'allowed', cookie };
      },
      (result) => result.verdict !== 'allowed',
    );
    const data = { from: address, via };
    switch (attempt.outcome) {
      case 'limited':
        return { verdict: 'limited', retryAfterMs: attempt.retryAfterMs };
      case 'busy':
        if (Date.now() - this.#lastBusyEvent >= BUSY_EVENT_INTERVAL_MS) {
          this.#lastBusyEvent = Date.now();
          this.ctx.events.record('user.login_busy', `login checks refused: too many waiting (${attempt.by})`, { user, data: { ...data, by: attempt.by } });
        }
        return { verdict: 'busy' };
      case 'checked':
        if (!attempt.failed) {
          this.ctx.events.record('user.login', `${user} logged in (${via})`, { user, data });
          return attempt.value;
        }
        this.ctx.events.record('user.login_failed', `failed ${via} login for ${user}`, { user, data });
        if (attempt.locked !== undefined) {
          const window = Math.round(this.limiter.limits.windowMs / 1000);
          const what = attempt.locked === 'pair' ? `${user} from ${address}` : `every user from ${address}`;
          this.ctx.events.record('user.login_locked', `too many failed logins: ${what} refused for up to ${window} s`, {
            user, data: { ...data, by: attempt.locked },
          });
        }
        return attempt.value;
    }
  }
}
