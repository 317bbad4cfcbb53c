// Doubling pauses between retries (reconnects, mounts, joins, creates), the one formula every retry loop uses.

/**
 * The pause before retry number `attempt` (0 for the first retry): `minMs` doubled per attempt, never above `maxMs`.
 *
 * @example
 * backoffMs(0, 250, 10_000); // 250
 * backoffMs(3, 250, 10_000); // 2000
 * backoffMs(99, 250, 10_000); // 10000
 */
export function backoffMs(attempt: number, minMs: number, maxMs: number): number {
  // The exponent is capped only so the product stays finite; the cap at maxMs is what callers see.
  return Math.min(maxMs, minMs * 2 ** Math.min(Math.max(0, attempt), 30));
}
