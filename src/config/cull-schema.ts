// The `pool.cull:` section of pool.yaml: when an idle session is stopped, how long before that its user is
// warned, and how long open notebooks get to save. Idle means "no work" (see src/hub/cull), never "no traffic".
import { z } from 'zod';
import { duration } from './duration.js';

/** A cull timeout: a duration, or `null` for "never cull" (an always-on profile). */
export const idleTimeout = () =>
  z
    .union([z.string(), z.number(), z.null()])
    .transform((value, ctx) => {
      if (value === null) return null;
      const parsed = duration('0').safeParse(value);
      if (!parsed.success) {
        ctx.addIssue({ code: 'custom', message: `"${value}" is not a duration; write e.g. "30s", "5m", "1h", milliseconds, or null (never)` });
        return z.NEVER;
      }
      if (parsed.data <= 0) {
        ctx.addIssue({ code: 'custom', message: 'must be more than 0 (write null to never cull)' });
        return z.NEVER;
      }
      return parsed.data;
    });

export const cullSchema = z
  .strictObject({
    idleTimeout: idleTimeout()
      .prefault('1h')
      .describe('How long a session may do no work (no kernel executing, no SSH/terminal foreground process or input, no request a person made) before it is stopped; null never culls. A profile\'s `idleTimeout` overrides it.'),
    warnBefore: duration('10m').describe('How long before the stop the user is warned (a banner on every open Jupyter page, a line on every SSH terminal).'),
    saveTimeout: duration('15s').describe('How long open notebooks get to save themselves before the server stops.'),
    interval: duration('15s').describe('How often the hub checks sessions for idleness.'),
  })
  .prefault({})
  .describe('Stopping idle sessions: idle means no work, never "no traffic".');

export type CullSection = z.output<typeof cullSchema>;
