// The scheduler's one decision: which ready instance a new session goes to, or why it must wait, or why it can
// never fit. Pure and allocation-light: it runs once per request and once per queued request whenever room frees.

/**
 * How a new session picks among the instances it fits on.
 * - `spread`: the least loaded instance (load = the largest share of any reserved resource, then sessions).
 * - `pack`: the busiest instance that still fits, so other instances empty out and can be scaled in.
 */
export type PlacementStrategy = 'spread' | 'pack';

/** What a session reserves on its instance. */
export interface ResourceRequest {
  /** CPU cores. */
  readonly cpu: number;
  readonly memoryBytes: number;
  /** Number of GPUs (each granted whole, never shared). */
  readonly gpus: number;
}

/** What an instance offers to sessions (configured overrides applied to what its agent measured). */
export interface Room {
  readonly cpus: number;
  readonly memoryBytes: number;
  /** Device indices of the GPUs sessions may be granted. */
  readonly gpuIndices: readonly number[];
  /** Most sessions at once; null: no limit besides the resources. */
  readonly maxSessions: number | null;
}

/** What is reserved on an instance now. */
export interface Usage {
  cpu: number;
  memoryBytes: number;
  /** GPU indices granted to a session. */
  readonly gpus: Set<number>;
  sessions: number;
}

/** One ready instance as placement sees it. */
export interface Candidate {
  readonly id: string;
  readonly room: Room;
  readonly usage: Usage;
}

/** Options of one decision. */
export interface PlacementOptions {
  readonly strategy: PlacementStrategy;
  /** An instance the user already runs on: chosen first when it fits. */
  readonly sticky?: string;
}

/** The outcome of `decidePlacement`, with the reason recorded in the event log. */
export type PlacementDecision =
  | { readonly outcome: 'placed'; readonly instanceId: string; readonly gpus: readonly number[]; readonly reason: string; readonly considered: number }
  | { readonly outcome: 'wait'; readonly reason: string; readonly considered: number };

/** An empty usage record. */
export const emptyUsage = (): Usage => ({ cpu: 0, memoryBytes: 0, gpus: new Set(), sessions: 0 });

/**
 * True when `request` fits on `room` given what `usage` already holds.
 *
 * @example
 * fits({ cpus: 8, memoryBytes: 32 * 2 ** 30, gpuIndices: [0, 1], maxSessions: null },
 *   { cpu: 4, memoryBytes: 8 * 2 ** 30, gpus: new Set([0]), sessions: 3 }, { cpu: 2, memoryBytes: 2 ** 30, gpus: 2 });
 * // false: one of the two GPUs is taken
 */
export function fits(room: Room, usage: Usage, request: ResourceRequest): boolean {
  if (room.maxSessions !== null && usage.sessions >= room.maxSessions) return false;
  if (request.cpu > 0 && usage.cpu + request.cpu > room.cpus + 1e-9) return false;
  if (request.memoryBytes > 0 && usage.memoryBytes + request.memoryBytes > room.memoryBytes) return false;
  if (request.gpus > 0 && room.gpuIndices.length - usage.gpus.size < request.gpus) return false;
  return true;
}

/**
 * The largest share of any resource that is reserved (0 = idle, 1 = full).
 *
 * @example
 * loadOf({ cpus: 8, memoryBytes: 32 * 2 ** 30, gpuIndices: [0, 1], maxSessions: null },
 *   { cpu: 4, memoryBytes: 8 * 2 ** 30, gpus: new Set([0]), sessions: 3 }); // 0.5 (half the CPUs, half the GPUs)
 */
export function loadOf(room: Room, usage: Usage): number {
  let share = 0;
  if (room.cpus > 0) share = Math.max(share, usage.cpu / room.cpus);
  if (room.memoryBytes > 0) share = Math.max(share, usage.memoryBytes / room.memoryBytes);
  if (room.gpuIndices.length > 0) share = Math.max(share, usage.gpus.size / room.gpuIndices.length);
  if (room.maxSessions !== null) share = Math.max(share, usage.sessions / room.maxSessions);
  return share;
}

/**
 * Why `request` can never fit an instance with `room` (even an empty one), or undefined when it can.
 *
 * @example
 * neverFitsReason({ cpus: 8, memoryBytes: 32 * 2 ** 30, gpuIndices: [], maxSessions: null }, { cpu: 16, memoryBytes: 0, gpus: 0 });
 * // 'needs 16 CPU cores; an instance has 8'
 */
export function neverFitsReason(room: Room, request: ResourceRequest): string | undefined {
  if (room.maxSessions !== null && room.maxSessions < 1) return 'instances take no sessions';
  if (request.cpu > room.cpus) return `needs ${request.cpu} CPU cores; an instance has ${room.cpus}`;
  if (request.memoryBytes > room.memoryBytes) return `needs ${request.memoryBytes} bytes of memory; an instance has ${room.memoryBytes}`;
  if (request.gpus > room.gpuIndices.length) return `needs ${request.gpus} GPU(s); an instance has ${room.gpuIndices.length}`;
  return undefined;
}

/** The lowest free GPU indices, `count` of them. */
function pickGpus(room: Room, usage: Usage, count: number): number[] {
  const granted: number[] = [];
  for (const index of room.gpuIndices) {
    if (granted.length === count) break;
    if (!usage.gpus.has(index)) granted.push(index);
  }
  return granted;
}

/**
 * Picks the instance a new session goes to among ready candidates, or says why it must wait. Ties go to the
 * earlier candidate (the oldest instance). The caller reserves the result in its usage records.
 *
 * @example
 * const decision = decidePlacement(candidates, { cpu: 1, memoryBytes: 2 ** 30, gpus: 0 }, { strategy: 'spread' });
 * if (decision.outcome === 'placed') reserve(decision.instanceId, decision.gpus);
 */
export function decidePlacement(
  candidates: Iterable<Candidate>,
  request: ResourceRequest,
  options: PlacementOptions,
): PlacementDecision {
  let best: Candidate | undefined;
  let bestLoad = 0;
  let considered = 0;
  const pack = options.strategy === 'pack';
  for (const candidate of candidates) {
    considered++;
    if (!fits(candidate.room, candidate.usage, request)) continue;
    if (candidate.id === options.sticky) {
      return {
        outcome: 'placed', instanceId: candidate.id, gpus: pickGpus(candidate.room, candidate.usage, request.gpus), considered,
        reason: `sticky: the user already runs on ${candidate.id}`,
      };
    }
    const load = loadOf(candidate.room, candidate.usage);
    if (!best) {
      best = candidate;
      bestLoad = load;
      continue;
    }
    const better = pack
      ? load > bestLoad || (load === bestLoad && candidate.usage.sessions > best.usage.sessions)
      : load < bestLoad || (load === bestLoad && candidate.usage.sessions < best.usage.sessions);
    if (better) {
      best = candidate;
      bestLoad = load;
    }
  }
  if (!best) {
    return {
      outcome: 'wait', considered,
      reason: considered === 0 ? 'no instance is ready' : `none of ${considered} ready instance(s) has room`,
    };
  }
  const how = pack ? 'pack: the busiest ready instance that fits' : 'spread: the least loaded ready instance';
  return {
    outcome: 'placed', instanceId: best.id, gpus: pickGpus(best.room, best.usage, request.gpus), considered,
    reason: `${how} (load ${bestLoad.toFixed(2)}, ${best.usage.sessions} session(s), ${considered} considered)`,
  };
}
