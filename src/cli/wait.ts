// Waits for the pool to reach its size, printing each instance's state changes (progress for `up` and `scale`).
import type { HubClient } from './client.js';
import { note } from './output.js';

interface InstanceLine {
  id: string;
  state: string;
  detail: string | null;
}

/**
 * Polls the hub until as many instances are ready as the pool's desired size; false when `timeoutMs` passed first.
 *
 * @example
 * if (!(await waitForPool(hub, 180_000))) note('warning: not every instance is ready yet');
 */
export async function waitForPool(hub: HubClient, timeoutMs: number): Promise<boolean> {
  const seen = new Map<string, string>();
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const [{ body: pool }, { body: instances }] = await Promise.all([
        hub.json<{ instances: number }>('GET', '/hub/api/pool'),
        hub.json<InstanceLine[]>('GET', '/hub/api/instances'),
      ]);
      for (const i of instances) {
        if (seen.get(i.id) === i.state) continue;
        seen.set(i.id, i.state);
        note(`  instance ${i.id}: ${i.state}${i.detail ? ` (${i.detail})` : ''}`);
      }
      if (instances.filter((i) => i.state === 'ready').length >= pool.instances) return true;
    } catch {
      // the hub may be restarting; try again
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}
