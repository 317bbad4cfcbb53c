// One pino logger per process, with the fields that carry secrets redacted wherever they appear.
import { pino, destination, type Logger } from 'pino';

export type { Logger };

const REDACT = ['token', 'password', 'secret', 'joinToken', '*.token', '*.password', '*.secret', '*.joinToken', 'headers.authorization', 'headers.cookie'];

/**
 * Creates a logger for one component; output is JSON lines on stderr.
 *
 * @example
 * const log = createLogger('hub', 'info');
 * log.info({ instance: 'i-1' }, 'instance ready');
 */
export function createLogger(component: string, level = 'info'): Logger {
  return pino({ name: component, level, redact: { paths: REDACT, censor: '[redacted]' } }, destination(2));
}
