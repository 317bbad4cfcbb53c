// The `pool:` section of pool.yaml: size, placement strategy, capacity overrides, session profiles, repair and
// drain settings. Every default lives here; values that make no sense (negative, absurd) are refused by key.
import { z } from 'zod';
import { parseSize } from '../lib/size.js';
import { cullSchema, idleTimeout } from './cull-schema.js';
import { autoscaleSchema } from './autoscale-schema.js';
import { duration } from './duration.js';

/** Largest sizes accepted anywhere in `pool:`: anything above is a typo, not a machine. */
export const POOL_LIMITS = {
  instances: 1000,
  cpus: 4096,
  memoryBytes: 64 * 2 ** 40,
  gpus: 64,
  maxSessions: 10_000,
} as const;

/** A memory size ("4Gi", "512M" or bytes), parsed to bytes; refuses negative and absurd values. */
const size = () =>
  z.union([z.string(), z.number()]).transform((value, ctx) => {
    const bytes = parseSize(value);
    if (bytes === undefined) {
      ctx.addIssue({ code: 'custom', message: `"${value}" is not a size; write e.g. "512Mi", "4Gi", "16G" or bytes (not negative)` });
      return z.NEVER;
    }
    if (bytes > POOL_LIMITS.memoryBytes) {
      ctx.addIssue({ code: 'custom', message: `${value} is more than the 64 TiB an instance can have` });
      return z.NEVER;
    }
    return bytes;
  });

const cpus = () =>
  z
    .number()
    .min(0, 'must not be negative')
    .max(POOL_LIMITS.cpus, `must be at most ${POOL_LIMITS.cpus} cores`);
const gpus = () =>
  z
    .number()
    .int('must be a whole number of GPUs')
    .min(0, 'must not be negative')
    .max(POOL_LIMITS.gpus, `must be at most ${POOL_LIMITS.gpus} GPUs`);

export const capacityOverrideSchema = z
  .strictObject({
    cpus: cpus().positive('must be more than 0 cores').optional().describe('CPU cores each instance offers (default: measured by the agent).'),
    memory: size().optional().describe('Memory each instance offers, e.g. "16Gi" (default: measured by the agent).'),
    gpus: gpus().optional().describe('GPUs each instance offers (default: detected with nvidia-smi).'),
    maxSessions: z
      .number()
      .int('must be a whole number')
      .min(1, 'must be at least 1')
      .max(POOL_LIMITS.maxSessions, `must be at most ${POOL_LIMITS.maxSessions}`)
      .nullable()
      .default(null)
      .describe('Most sessions one instance takes; null: no limit besides cpu, memory and GPUs.'),
  })
  .prefault({})
  .describe('What each instance offers to sessions; anything left out is measured on the instance.');

const PROFILE_NAME = /^[a-z][a-z0-9_-]{0,31}$/;

export const profileSchema = z
  .strictObject({
    description: z.string().max(200).optional().describe('Shown on the home page.'),
    cpu: cpus().default(0).describe('CPU cores reserved for a session of this profile.'),
    memory: size().default(0).describe('Memory reserved for a session of this profile, e.g. "4Gi".'),
    gpus: gpus().default(0).describe('GPUs granted to a session of this profile (it sees only those).'),
    idleTimeout: idleTimeout().optional().describe('Cull timeout of this profile\'s sessions (null: never); default pool.cull.idleTimeout.'),
    processes: z
      .number()
      .int()
      .nonnegative()
      .optional()
      .describe('Most processes and threads a session of this profile runs at once (its cgroup\'s pids limit, as root); absent: 4096; 0: no limit.'),
  })
  .describe('What a session of this profile reserves on its instance.');

export const repairSchema = z
  .strictObject({
    missedHeartbeats: z
      .number()
      .int()
      .min(1, 'must be at least 1')
      .max(100, 'must be at most 100')
      .default(3)
      .describe('Heartbeats an instance may miss before it is marked unreachable.'),
    failAfter: duration('30s').describe('How long an instance may stay unreachable before it is marked failed and replaced.'),
    joinTimeout: duration('2m').describe('How long a new instance may take for its agent to join before it is marked failed and replaced.'),
    maxShare: z
      .number()
      .gt(0, 'must be more than 0')
      .max(1, 'must be at most 1 (the whole pool)')
      .default(0.34)
      .describe('Largest share of the pool repaired at once (at least one instance), so a flapping network cannot wipe the pool.'),
  })
  .prefault({});

export const drainSchema = z
  .strictObject({
    deadline: duration('1h').describe('How long a draining instance waits for its sessions to end before it stops them.'),
  })
  .prefault({});

export const poolSchema = z
  .strictObject({
    instances: z
      .number()
      .int()
      .min(0, 'must not be negative')
      .max(POOL_LIMITS.instances, `must be at most ${POOL_LIMITS.instances}`)
      .default(2)
      .describe('How many instances the pool keeps running (with autoscale on: how many it starts with).'),
    min: z
      .number()
      .int()
      .min(0, 'must not be negative')
      .max(POOL_LIMITS.instances, `must be at most ${POOL_LIMITS.instances}`)
      .default(0)
      .describe('Fewest instances the autoscaler keeps (0: none while nobody works; the pool wakes on intent).'),
    max: z
      .number()
      .int()
      .min(0, 'must not be negative')
      .max(POOL_LIMITS.instances, `must be at most ${POOL_LIMITS.instances}`)
      .default(10)
      .describe('Most instances the autoscaler runs.'),
    autoscale: autoscaleSchema,
    placement: z
      .enum(['spread', 'pack'])
      .default('spread')
      .describe('`spread`: the least loaded instance with room; `pack`: the busiest instance that still fits (lets instances empty).'),
    capacity: capacityOverrideSchema,
    profiles: z
      .record(z.string().regex(PROFILE_NAME, 'profile names are lowercase [a-z][a-z0-9_-]{0,31}'), profileSchema)
      .default({})
      .describe('Named resource requests users pick when they start a server (e.g. `small`, `gpu`).'),
    defaultProfile: z
      .string()
      .nullable()
      .default(null)
      .describe('Profile used when a request names none; null: reserve nothing but a session slot.'),
    queueTimeout: duration('15m').describe('How long a request that fits the pool waits for room before it fails.'),
    gpuCommand: z
      .string()
      .min(1)
      .nullable()
      .default('nvidia-smi')
      .describe('nvidia-smi used by agents to detect GPUs (a path or a name on PATH); null turns detection off.'),
    repair: repairSchema,
    drain: drainSchema,
    cull: cullSchema,
  })
  .superRefine((pool, ctx) => {
    if (pool.min > pool.max) ctx.addIssue({ code: 'custom', path: ['min'], message: `is more than max (${pool.min} > ${pool.max})` });
    pool.autoscale.profiles.forEach((p, i) => {
      for (const key of ['min', 'max'] as const) {
        const v = p[key];
        if (v !== undefined && (v < pool.min || v > pool.max)) {
          ctx.addIssue({ code: 'custom', path: ['autoscale', 'profiles', i, key], message: `${v} is outside pool.min..pool.max (${pool.min}..${pool.max})` });
        }
      }
    });
    if (pool.defaultProfile !== null && !(pool.defaultProfile in pool.profiles)) {
      ctx.addIssue({
        code: 'custom',
        path: ['defaultProfile'],
        message: `no profile named "${pool.defaultProfile}" (profiles: ${Object.keys(pool.profiles).join(', ') || 'none'})`,
      });
    }
  })
  .prefault({});

export type PoolSection = z.output<typeof poolSchema>;
export type ProfileConfig = z.output<typeof profileSchema>;
export type PlacementStrategyName = PoolSection['placement'];
