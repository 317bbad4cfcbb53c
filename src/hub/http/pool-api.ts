// Pool routes under /hub/api (one instance, drain, protect, the wait queue, profiles) and the Prometheus
// metrics at /hub/metrics. Request and response schemas are exported for the OpenAPI document.
import { Hono } from 'hono';
import { z } from 'zod';
import { parseDuration } from '../../lib/duration.js';
import { BadRequestError, InstanceNotFoundError } from '../errors.js';
import type { CreateFailure, InstancePool, InstanceView } from '../instances/pool.js';
import type { HubMetrics } from '../metrics.js';
import type { SessionManager } from '../sessions/manager.js';
import { requireCaller, requireScope } from './auth.js';
import { readJson } from './body.js';
import { instanceModel } from './models.js';
import type { HubEnv } from './services.js';

/** What the pool routes use from the hub. */
export interface PoolApiContext {
  readonly pool: Pick<InstancePool, 'get' | 'drain' | 'protect' | 'resize' | 'size' | 'list' | 'ready' | 'createError'>;
  /** pool.yaml's `pool.instances`, and where a new desired size is kept across hub restarts. */
  readonly scale: { readonly configured: number; save(desired: number): Promise<void> };
  readonly sessions: Pick<SessionManager, 'countOn' | 'queued' | 'profiles' | 'resolveProfile'>;
  readonly metrics: Pick<HubMetrics, 'render' | 'contentType'>;
}

/** Body of `POST /hub/api/instances/{id}/drain`. */
export const drainBodySchema = z.strictObject({
  deadline: z
    .union([z.string().max(32, 'must be at most 32 characters'), z.number().int().nonnegative().max(365 * 24 * 3600 * 1000, 'must be at most a year')])
    .optional()
    .describe('How long sessions may keep running before they are stopped ("30m", "2h" or ms); default pool.yaml pool.drain.deadline.'),
});

/** Body of `PATCH /hub/api/pool`. */
export const scaleBodySchema = z.strictObject({
  instances: z.number().int().min(0, 'must be 0 or more').max(1000, 'must be at most 1000').describe('The size to keep the pool at.'),
});

/** The pool as a whole. */
export const poolSizeSchema = z
  .object({
    instances: z.number().int().describe('The size the pool is kept at.'),
    configured: z.number().int().describe('pool.yaml pool.instances.'),
    ready: z.number().int(),
    draining: z.array(z.string()).describe('Instances being drained (no new sessions; removed once their sessions end).'),
    min: z.number().int(),
    max: z.number().int(),
    create_error: z
      .object({
        code: z.string().describe('Stable code of the provider\'s error, e.g. `sbatch_rejected`, `slurm_unavailable`.'),
        message: z.string(),
        attempts: z.number().int().describe('Failed creates in a row.'),
        retry_at: z.string().describe('When the pool tries again (ISO-8601).'),
      })
      .nullable()
      .describe('Why the pool cannot create instances right now (it retries with back-off); null when creates succeed.'),
  })
  .meta({ id: 'Pool' });

/** Body of `POST /hub/api/instances/{id}/protect`. */
export const protectBodySchema = z.strictObject({
  protected: z.boolean().default(true).describe('true protects the instance from removal; false lifts the protection.'),
});

/** Body of `POST /hub/api/users/{name}/server` (JupyterHub's user_options, with the pool's `profile`). */
export const startServerBodySchema = z.strictObject({
  profile: z.string().min(1).max(64).optional().describe('Profile name from pool.yaml pool.profiles; default profile when absent.'),
});

/** One request waiting for room. */
export const queueEntrySchema = z.object({
  position: z.number().int().describe('1 = next'),
  session: z.string(),
  user: z.string(),
  profile: z.string().nullable(),
  since: z.string(),
  wait_seconds: z.number(),
  reason: z.string().describe('Why it waits (the last placement decision).'),
});

/** A profile users may pick. */
export const profileJsonSchema = z.object({
  name: z.string(),
  description: z.string().nullable(),
  cpu: z.number(),
  memory_bytes: z.number(),
  gpus: z.number().int(),
});

function createErrorModel(failure: CreateFailure | undefined) {
  return failure ? { code: failure.code, message: failure.message, attempts: failure.attempts, retry_at: failure.retryAt } : null;
}

/**
 * Builds the pool routes (mounted at `/hub/api`).
 *
 * @example
 * app.route('/hub/api', poolApiRoutes({ pool, sessions, metrics }));
 */
export function poolApiRoutes(ctx: PoolApiContext): Hono<HubEnv> {
  const api = new Hono<HubEnv>();
  const instance = (id: string): InstanceView => {
    const view = ctx.pool.get(id);
    if (!view) throw new InstanceNotFoundError(id);
    return view;
  };
  const model = (view: InstanceView) => instanceModel(view, ctx.sessions.countOn(view.id));

  api.get('/instances/:id', (c) => {
    requireScope(c, 'read:instances');
    return c.json(model(instance(c.req.param('id'))));
  });

  api.post('/instances/:id/drain', async (c) => {
    requireScope(c, 'admin:instances');
    const id = c.req.param('id');
    instance(id);
    const body = await readJson(c, drainBodySchema);
    let deadlineMs: number | undefined;
    if (body.deadline !== undefined) {
      deadlineMs = parseDuration(body.deadline);
      if (deadlineMs === undefined) throw new BadRequestError(`deadline: "${body.deadline}" is not a duration; write e.g. "30m" or milliseconds`, 'deadline');
    }
    return c.json(model(ctx.pool.drain(id, deadlineMs)), 202);
  });

  api.post('/instances/:id/protect', async (c) => {
    requireScope(c, 'admin:instances');
    const id = c.req.param('id');
    instance(id);
    const body = await readJson(c, protectBodySchema);
    return c.json(model(ctx.pool.protect(id, body.protected)));
  });

  const poolModel = () => ({
    instances: ctx.pool.size,
    configured: ctx.scale.configured,
    ready: ctx.pool.ready().length,
    draining: ctx.pool.list().filter((v) => v.draining).map((v) => v.id),
    min: 0,
    max: 1000,
    create_error: createErrorModel(ctx.pool.createError),
  });

  api.get('/pool', (c) => {
    requireScope(c, 'read:instances');
    return c.json(poolModel());
  });

  api.patch('/pool', async (c) => {
    requireScope(c, 'admin:instances');
    const { instances } = await readJson(c, scaleBodySchema);
    ctx.pool.resize(instances);
    await ctx.scale.save(instances);
    return c.json(poolModel(), 202);
  });

  api.get('/queue', (c) => {
    requireScope(c, 'read:instances');
    return c.json(
      ctx.sessions.queued().map((q) => ({
        position: q.position, session: q.sessionId, user: q.user, profile: q.profile, since: q.since, wait_seconds: q.waitedMs / 1000, reason: q.reason,
      })),
    );
  });

  api.get('/profiles', (c) => {
    requireCaller(c);
    return c.json(
      Object.entries(ctx.sessions.profiles()).map(([name, p]) => ({
        name, description: p.description ?? null, cpu: p.cpu, memory_bytes: p.memoryBytes, gpus: p.gpus,
      })),
    );
  });

  return api;
}

/**
 * `GET /hub/metrics`: Prometheus text format, for an admin token (`Authorization: Bearer <token>` works for
 * Prometheus' `authorization` setting).
 *
 * @example
 * app.route('/hub', metricsRoutes({ metrics }));
 */
export function metricsRoutes(ctx: Pick<PoolApiContext, 'metrics'>): Hono<HubEnv> {
  const routes = new Hono<HubEnv>();
  routes.get('/metrics', async (c) => {
    requireScope(c, 'read:metrics');
    return c.body(await ctx.metrics.render(), 200, { 'content-type': ctx.metrics.contentType });
  });
  return routes;
}
