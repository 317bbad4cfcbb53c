// The idle rule as one pure function: given what a session did and when, and the clock, keep it, warn its user,
// or stop it. Idle means "no work", never "no traffic": only a kernel executing, a terminal or SSH session with a
// foreground process or keyboard input, and requests a person made count (what counts is decided where it is
// seen: the agent for kernels and terminals, the gateway for requests).

/** What a session has done, as the hub last heard it. Times are epoch milliseconds. */
export interface IdleSignals {
  /** When the session started (its first moment of "activity"). */
  readonly startedMs: number;
  /** Work runs right now: a kernel executing, a terminal or SSH session with a foreground process. */
  readonly busy: boolean;
  /** Last moment of work the agent saw (a kernel executing, terminal or SSH input), if any. */
  readonly lastWorkMs?: number | undefined;
  /** Last request a person made to the server (the gateway's judgement), if any. */
  readonly lastRequestMs?: number | undefined;
  /** The user asked to keep the session until then (`dspool extend`, the banner's button). */
  readonly extendedUntilMs?: number | undefined;
  /** An admin exempted the user from culling. */
  readonly exempt: boolean;
}

/** The session's cull policy (its profile's timeout, or the pool's). */
export interface CullPolicy {
  /** Idle time after which the session is stopped, in ms; null: never. */
  readonly idleTimeoutMs: number | null;
  /** How long before the stop the user is warned, in ms. */
  readonly warnBeforeMs: number;
}

/** A warning already given: when, and for what stop time. */
export interface GivenWarning {
  readonly warnedAtMs: number;
  readonly cullAtMs: number;
}

/** Why a session is kept. */
export type KeepReason = 'exempt' | 'no-timeout' | 'busy' | 'active';

/**
 * What to do with one session now.
 * - `keep`: nothing to do; `withdraw` says a warning given earlier no longer holds (work resumed, extended).
 * - `warn`: tell the user the session stops at `cullAtMs` unless they work or extend (again when the time moved).
 * - `cull`: the warning ran out; stop it.
 */
export type CullVerdict =
  | { readonly action: 'keep'; readonly reason: KeepReason; readonly withdraw: boolean; readonly idleSinceMs: number; readonly cullAtMs: number | null }
  | { readonly action: 'warn'; readonly idleSinceMs: number; readonly cullAtMs: number }
  | { readonly action: 'cull'; readonly idleSinceMs: number; readonly idleMs: number };

/**
 * Decides about one session at `nowMs`. A session is stopped only after a warning, and never earlier than the
 * warning promised: a check that comes late (a hub restart) warns first and stops a full lead time later.
 *
 * @example
 * decideCull({ startedMs: 0, busy: false, exempt: false }, { idleTimeoutMs: 60_000, warnBeforeMs: 10_000 }, undefined, 55_000);
 * // { action: 'warn', idleSinceMs: 0, cullAtMs: 60_000 }
 */
export function decideCull(signals: IdleSignals, policy: CullPolicy, warning: GivenWarning | undefined, nowMs: number): CullVerdict {
  const idleSinceMs = Math.max(signals.startedMs, signals.lastWorkMs ?? 0, signals.lastRequestMs ?? 0);
  const keep = (reason: KeepReason, cullAtMs: number | null): CullVerdict => ({
    action: 'keep', reason, withdraw: warning !== undefined, idleSinceMs, cullAtMs,
  });
  if (signals.exempt) return keep('exempt', null);
  if (policy.idleTimeoutMs === null) return keep('no-timeout', null);
  if (signals.busy) return keep('busy', null);

  const deadlineMs = Math.max(idleSinceMs + policy.idleTimeoutMs, signals.extendedUntilMs ?? 0);
  // The warning's lead: `warnBeforeMs`, or all of the idle time when the timeout is shorter than that.
  const warnAtMs = Math.max(idleSinceMs, deadlineMs - policy.warnBeforeMs);
  const leadMs = deadlineMs - warnAtMs;

  if (warning !== undefined) {
    const workedSince = idleSinceMs > warning.warnedAtMs;
    if (workedSince || nowMs < warnAtMs) return keep('active', deadlineMs);
    // Extended, but not past the warning window: the same warning with the later time.
    if (deadlineMs > warning.cullAtMs) return { action: 'warn', idleSinceMs, cullAtMs: deadlineMs };
    if (nowMs >= warning.cullAtMs) return { action: 'cull', idleSinceMs, idleMs: nowMs - idleSinceMs };
    return { action: 'keep', reason: 'active', withdraw: false, idleSinceMs, cullAtMs: warning.cullAtMs };
  }
  if (nowMs < warnAtMs) return keep('active', deadlineMs);
  return { action: 'warn', idleSinceMs, cullAtMs: Math.max(deadlineMs, nowMs + leadMs) };
}
