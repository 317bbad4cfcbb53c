// The lifecycle of one user server (a session), as the hub sees it.
import { transitions } from '../../lib/state.js';

/**
 * - `pending`: asked for; waiting for an instance that can take it.
 * - `starting`: placed; the agent is creating the account and starting Jupyter.
 * - `running`: Jupyter answers; the gateway routes to it.
 * - `stopping`: asked to stop; the agent is stopping it.
 * - `stopped`: ended normally.
 * - `failed`: could not start, or died, or its instance was lost.
 */
export type SessionState = 'pending' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export const ACTIVE_SESSION_STATES: readonly SessionState[] = ['pending', 'starting', 'running', 'stopping'];

/** Validates one session transition; throws `InvalidTransitionError`. */
export const nextSessionState = transitions<SessionState>('session', {
  pending: ['starting', 'stopped', 'failed'],
  starting: ['running', 'stopping', 'failed'],
  running: ['stopping', 'failed', 'stopped'],
  stopping: ['stopped', 'failed'],
  stopped: [],
  failed: [],
});

/**
 * Who stopped a server (kept on its record as `stopCause`).
 * - `request`: the user or an admin (the API, the home page, a disabled or deleted user).
 * - `idle`: the idle culler, after its warning.
 * - `drain`: its instance's drain deadline passed.
 * - `shutdown`: the pool itself stopped (`dspool up` ended).
 */
export type StopCause = 'request' | 'idle' | 'drain' | 'shutdown';

/** Stop causes by which the pool, not the user, ended a server: only a person's intent starts it again. */
export const POOL_STOP_CAUSES: readonly StopCause[] = ['idle', 'drain'];
