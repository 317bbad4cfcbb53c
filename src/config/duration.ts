// The zod type for durations in pool.yaml, shared by every section that has one.
import { z } from 'zod';
import { parseDuration } from '../lib/duration.js';

/**
 * A duration as users write it ("30s", "5m", or milliseconds), parsed to milliseconds.
 * @example
 * z.strictObject({ startTimeout: duration('60s') }).parse({}).startTimeout; // 60000
 */
export const duration = (fallback: string) =>
  z
    .union([z.string(), z.number()])
    .default(fallback)
    .transform((value, ctx) => {
      const ms = parseDuration(value);
      if (ms === undefined) {
        ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration; write e.g. "30s", "5m", "1h" or milliseconds` });
        return z.NEVER;
      }
      return ms;
    });
