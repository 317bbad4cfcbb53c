// What each session reserved on which instance, and the running totals per instance that placement decides
// against. Kept in memory only: after a hub restart the agents' reports rebuild it (see SessionManager.adopt).
import type { SessionResources } from '../../protocol/agent.js';
import { emptyUsage, type Usage } from './placement.js';

/** What one session reserved, and where. */
export interface Allocation {
  readonly instanceId: string;
  readonly resources: SessionResources;
}

/**
 * Reservations by session and usage by instance, always in step.
 *
 * @example
 * const ledger = new Ledger();
 * ledger.reserve('s-1', 'i-1', { cpu: 2, memoryBytes: 2 ** 30, gpus: [0] });
 * ledger.usageOf('i-1'); // { cpu: 2, memoryBytes: 1073741824, gpus: Set {0}, sessions: 1 }
 * ledger.release('s-1', () => false); // true; 'i-1' is forgotten (no sessions, no longer in the pool)
 */
export class Ledger {
  readonly #usage = new Map<string, Usage>();
  readonly #allocations = new Map<string, Allocation>();

  /** The instance's running totals (created empty on first use; placement reads and the ledger updates them). */
  usageOf(instanceId: string): Usage {
    let usage = this.#usage.get(instanceId);
    if (!usage) {
      usage = emptyUsage();
      this.#usage.set(instanceId, usage);
    }
    return usage;
  }

  /** Sessions reserved on an instance. */
  sessionsOn(instanceId: string): number {
    return this.#usage.get(instanceId)?.sessions ?? 0;
  }

  allocationOf(sessionId: string): Allocation | undefined {
    return this.#allocations.get(sessionId);
  }

  /** Reserves `resources` for a session on an instance, replacing what it held before (anywhere). */
  reserve(sessionId: string, instanceId: string, resources: SessionResources): void {
    this.release(sessionId, () => true);
    const usage = this.usageOf(instanceId);
    usage.sessions++;
    usage.cpu += resources.cpu;
    usage.memoryBytes += resources.memoryBytes;
    for (const gpu of resources.gpus) usage.gpus.add(gpu);
    this.#allocations.set(sessionId, { instanceId, resources });
  }

  /**
   * Frees what a session reserved; returns false when it held nothing. An instance left with no sessions is
   * forgotten unless `stillInPool(instanceId)`.
   */
  release(sessionId: string, stillInPool: (instanceId: string) => boolean): boolean {
    const allocation = this.#allocations.get(sessionId);
    if (!allocation) return false;
    this.#allocations.delete(sessionId);
    const usage = this.#usage.get(allocation.instanceId);
    if (usage) {
      usage.sessions = Math.max(0, usage.sessions - 1);
      usage.cpu = Math.max(0, usage.cpu - allocation.resources.cpu);
      usage.memoryBytes = Math.max(0, usage.memoryBytes - allocation.resources.memoryBytes);
      for (const gpu of allocation.resources.gpus) usage.gpus.delete(gpu);
      if (usage.sessions === 0 && !stillInPool(allocation.instanceId)) this.#usage.delete(allocation.instanceId);
    }
    return true;
  }
}
