// Turns pool.yaml's `pool:` section into the placement, repair and drain settings of the instance pool and the
// session manager (the config already holds every default; this only reshapes it).
import type { LoadedConfig } from '../config/index.js';
import type { AgentSettings } from '../protocol/agent.js';
import type { InstancePoolContext } from './instances/pool.js';
import type { ProfileRequest, SessionManagerContext } from './sessions/manager.js';
import type { CullerContext } from './cull/index.js';

/**
 * The pool's capacity, heartbeat, repair and drain settings from the config.
 *
 * @example
 * new InstancePool({ ...base, ...placementSettings(config, { countOn: (id) => sessions.countOn(id) }) });
 */
export function placementSettings(
  config: LoadedConfig,
  occupancy: InstancePoolContext['occupancy'],
): Pick<InstancePoolContext, 'capacity' | 'heartbeatIntervalMs' | 'repair' | 'drainDeadlineMs' | 'occupancy'> {
  const { capacity, repair, drain } = config.pool;
  return {
    capacity: {
      ...(capacity.cpus === undefined ? {} : { cpus: capacity.cpus }),
      ...(capacity.memory === undefined ? {} : { memoryBytes: capacity.memory }),
      ...(capacity.gpus === undefined ? {} : { gpus: capacity.gpus }),
      maxSessions: capacity.maxSessions,
    },
    heartbeatIntervalMs: config.hub.heartbeatInterval,
    repair: { missedHeartbeats: repair.missedHeartbeats, failAfterMs: repair.failAfter, joinTimeoutMs: repair.joinTimeout, maxShare: repair.maxShare },
    drainDeadlineMs: drain.deadline,
    occupancy,
  };
}

/**
 * The session manager's strategy, profiles and queue settings from the config.
 *
 * @example
 * new SessionManager({ ...base, ...sessionSettings(config), metrics: metrics.placement });
 */
export function sessionSettings(
  config: LoadedConfig,
): Pick<SessionManagerContext, 'strategy' | 'profiles' | 'defaultProfile' | 'queueTimeoutMs'> {
  const profiles: Record<string, ProfileRequest> = {};
  for (const [name, p] of Object.entries(config.pool.profiles)) {
    profiles[name] = {
      cpu: p.cpu, memoryBytes: p.memory, gpus: p.gpus,
      ...(p.description === undefined ? {} : { description: p.description }),
      ...(p.processes === undefined ? {} : { processes: p.processes }),
    };
  }
  return { strategy: config.pool.placement, profiles, defaultProfile: config.pool.defaultProfile, queueTimeoutMs: config.pool.queueTimeout };
}

/**
 * The idle culler's policy per profile (its `idleTimeout`, else the pool's `pool.cull.idleTimeout`; a session
 * started without a profile uses the default profile's), warning lead, save time and check interval.
 *
 * @example
 * new Culler({ ...base, ...cullSettings(config) });
 */
export function cullSettings(config: LoadedConfig): Pick<CullerContext, 'policyOf' | 'saveTimeoutMs' | 'intervalMs'> {
  const { cull, profiles, defaultProfile } = config.pool;
  return {
    policyOf: (profile) => {
      const named = profiles[profile ?? defaultProfile ?? ''];
      return { idleTimeoutMs: named?.idleTimeout === undefined ? cull.idleTimeout : named.idleTimeout, warnBeforeMs: cull.warnBefore };
    },
    saveTimeoutMs: cull.saveTimeout,
    intervalMs: cull.interval,
  };
}

/**
 * The agents' `shareMount` setting from pool.yaml's `share:` (durations in ms); nothing when the operator mounts the
 * share. Only paths of credential files travel, never their content.
 *
 * @example
 * shareMountSettings(config.share); // { shareMount: { mount: { type: 'sshfs', … }, probeIntervalMs: 10000, probeTimeoutMs: 10000 } }
 */
export function shareMountSettings(share: LoadedConfig['share']): Pick<AgentSettings, 'shareMount'> {
  const { mount } = share;
  if (!mount) return {};
  const { timeout: timeoutMs, ...rest } = mount;
  return { shareMount: { mount: { ...rest, timeoutMs }, probeIntervalMs: share.probeInterval, probeTimeoutMs: share.probeTimeout } };
}
