// Waits for the pool to reach its size, printing each instance's state changes (progress for `up` and `scale`).
import type { HubClient } from './client.js';
import { OperationError } from './errors.js';
import { note } from './output.js';

interface CreateError {
  code: string;
  message: string;
  attempts: number;
  retry_at: string;
}

interface InstanceLine {
  id: string;
  state: string;
  detail: string | null;
}

/**
 * Polls the hub until as many instances are ready as the pool's desired size; false when `timeoutMs` passed first.
 * When the provider cannot create instances (sbatch refused the job…) the reason is printed once; with
 * `failAfterCreateErrors`, that many failures in a row throw `OperationError` carrying it.
 *
 * @example
 * if (!(await waitForPool(hub, 180_000))) note('warning: not every instance is ready yet');
 */
export async function waitForPool(hub: HubClient, timeoutMs: number, options: { failAfterCreateErrors?: number } = {}): Promise<boolean> {
  const seen = new Map<string, string>();
  let lastError = '';
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const [{ body: pool }, { body: instances }] = await Promise.all([
        hub.json<{ instances: number; create_error?: CreateError | null }>('GET', '/hub/api/pool'),
        hub.json<InstanceLine[]>('GET', '/hub/api/instances'),
      ]);
      for (const i of instances) {
        if (seen.get(i.id) === i.state) continue;
        seen.set(i.id, i.state);
        note(`  instance ${i.id}: ${i.state}${i.detail ? ` (${i.detail})` : ''}`);
      }
      if (instances.filter((i) => i.state === 'ready').length >= pool.instances) return true;
      const failure = pool.create_error;
      if (failure && failure.message !== lastError) {
        lastError = failure.message;
        note(`  cannot create instances (${failure.code}): ${failure.message}; the pool retries at ${failure.retry_at}`);
      }
      if (failure && options.failAfterCreateErrors !== undefined && failure.attempts >= options.failAfterCreateErrors) {
        throw new OperationError(`the pool cannot create instances (${failure.code}): ${failure.message}`);
      }
    } catch (error) {
      if (error instanceof OperationError) throw error;
      // the hub may be restarting; try again
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return false;
}
