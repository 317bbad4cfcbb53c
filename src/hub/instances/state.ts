// The lifecycle of one pool instance, as the hub sees it.
import { transitions } from '../../lib/state.js';

/**
 * - `starting`: the provider created it; its agent has not joined yet.
 * - `ready`: the agent joined and reported that it can start Jupyter and the share is writable.
 * - `unhealthy`: the agent joined but a check failed (no Jupyter, share not writable); takes no sessions.
 * - `unreachable`: the agent's connection dropped; its sessions keep their routes until it returns.
 * - `draining`: takes no new sessions; removed once its sessions end (or its drain deadline passes).
 * - `failed`: unreachable for longer than the grace period, or at once when its provider knows it is gone (its agent
 *   process exited); its sessions are lost and it is being replaced.
 * - `stopping`: being deleted by the provider.
 * - `deleted`: gone (kept only in events).
 */
export type InstanceState = 'starting' | 'ready' | 'unhealthy' | 'unreachable' | 'draining' | 'failed' | 'stopping' | 'deleted';

export const INSTANCE_STATES: readonly InstanceState[] = [
  'starting', 'ready', 'unhealthy', 'unreachable', 'draining', 'failed', 'stopping', 'deleted',
];

/** Validates one instance transition; throws `InvalidTransitionError`. */
export const nextInstanceState = transitions<InstanceState>('instance', {
  starting: ['ready', 'unhealthy', 'unreachable', 'draining', 'failed', 'stopping'],
  ready: ['unhealthy', 'unreachable', 'draining', 'stopping'],
  unhealthy: ['ready', 'unreachable', 'draining', 'stopping'],
  unreachable: ['ready', 'unhealthy', 'draining', 'failed', 'stopping'],
  draining: ['unreachable', 'stopping'],
  failed: ['stopping'],
  stopping: ['deleted'],
  deleted: [],
});
