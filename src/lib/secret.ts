// Comparing secrets without telling, by the time taken, how much of a guess was right: shared by the hub (tokens,
// join tokens, the gateway's secret, CSRF tokens), the hub ↔ gateway contract and the agent's relay.
import { timingSafeEqual } from 'node:crypto';

/**
 * Constant-time comparison of two secrets.
 *
 * @example
 * sameSecret(auth.slice(7), gatewaySecret); // true only when equal; the time taken does not depend on where they differ
 */
export function sameSecret(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
