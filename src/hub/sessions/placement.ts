// Placement for now: among ready instances, the one with the fewest sessions (ties: the oldest instance).
import type { InstanceView } from '../instances/pool.js';

/**
 * Picks the instance a new session goes to, or undefined when none is ready.
 *
 * @example
 * choosePlacement(pool.ready(), (id) => sessions.countOn(id));
 */
export function choosePlacement(ready: readonly InstanceView[], sessionsOn: (id: string) => number): InstanceView | undefined {
  let best: InstanceView | undefined;
  let bestCount = Infinity;
  for (const instance of ready) {
    const count = sessionsOn(instance.id);
    if (count < bestCount) {
      best = instance;
      bestCount = count;
    }
  }
  return best;
}
