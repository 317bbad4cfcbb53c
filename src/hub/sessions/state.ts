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
