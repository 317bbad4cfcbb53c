// `POST /hub/api/instances/join-tokens`: a one-use, expiring token and the one command that makes a machine an
// instance of this pool (`dspool agent join <hub-url> --token <t>`).
import { Hono } from 'hono';
import { z } from 'zod';
import { parseDuration } from '../../lib/duration.js';
import { BadRequestError } from '../errors.js';
import type { JoinService } from '../instances/join.js';
import { requireScope } from './auth.js';
import { readJson } from './body.js';
import type { HubEnv } from './services.js';

/** What the join route needs from the hub. */
export interface JoinApiContext {
  readonly joins: Pick<JoinService, 'issue'>;
  /** The URL agents dial (hub.agentAddress's listener, else the hub's own). */
  readonly agentUrl: string;
  /** `sha256:<hex>` of that listener's TLS certificate, when it serves TLS; the command pins it. */
  readonly agentFingerprint?: string;
}

/** Body of `POST /hub/api/instances/join-tokens`. */
export const joinTokenBodySchema = z.strictObject({
  expires_in: z.union([z.string(), z.number().positive()]).optional().describe('How long the token may be used ("30m", "2h" or ms); default 1h.'),
});

/** Answer of `POST /hub/api/instances/join-tokens`. */
export const joinTokenSchema = z
  .object({
    token: z.string().describe('One-use join token; shown once.'),
    expires_at: z.string(),
    hub_url: z.string().describe('Where agents reach the hub.'),
    hub_fingerprint: z.string().nullable().describe('SHA-256 fingerprint of the TLS certificate at hub_url, pinned by the joining machine; null for a plain URL (hub.privateNetwork).'),
    command: z.string().describe('The command to run (as root) on the machine that should join.'),
  })
  .meta({ id: 'JoinToken' });

/** A join token's lifetime when the request names none, in ms. */
const DEFAULT_TTL_MS = 60 * 60_000;
/** The longest a join token may live, in ms. */
const MAX_TTL_MS = 7 * 24 * 60 * 60_000;

/**
 * Builds the join route (mounted at `/hub/api`).
 *
 * @example
 * app.route('/hub/api', joinApiRoutes({ joins, agentUrl: 'http://10.0.0.1:8082' }));
 */
export function joinApiRoutes(ctx: JoinApiContext): Hono<HubEnv> {
  const api = new Hono<HubEnv>();
  api.post('/instances/join-tokens', async (c) => {
    requireScope(c, 'admin:instances');
    const body = await readJson(c, joinTokenBodySchema);
    const ttlMs = body.expires_in === undefined ? DEFAULT_TTL_MS : parseDuration(body.expires_in);
    if (ttlMs === undefined || ttlMs <= 0 || ttlMs > MAX_TTL_MS) throw new BadRequestError('expires_in must be a duration from 1s to 7d, e.g. "30m"', 'expires_in');
    const { token, expiresAt } = await ctx.joins.issue(ttlMs);
    const pin = ctx.agentFingerprint ? ` --hub-fingerprint ${ctx.agentFingerprint}` : '';
    return c.json({
      token, expires_at: expiresAt, hub_url: ctx.agentUrl, hub_fingerprint: ctx.agentFingerprint ?? null,
      command: `dspool agent join ${ctx.agentUrl} --token ${token}${pin}`,
    }, 201);
  });
  return api;
}
