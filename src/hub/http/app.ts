// The hub's HTTP application: health, the REST API under /hub/api, the pages under /hub, and one error shape.
import { Hono } from 'hono';
import type { Logger } from '../../lib/log.js';
import { InvalidTransitionError } from '../../lib/state.js';
import { HTTP_STATUS, HubError } from '../errors.js';
import { apiRoutes } from './api.js';
import { renderApiReference } from './api-docs.js';
import { authenticate } from './auth.js';
import { limitBody } from './body.js';
import { adminRoutes } from './admin-page.js';
import { pageRoutes } from './pages.js';
import { metricsRoutes, poolApiRoutes, type PoolApiContext } from './pool-api.js';
import { INTERNAL_PREFIX, internalRoutes, type InternalContext } from './internal.js';
import { joinApiRoutes, type JoinApiContext } from './join-api.js';
import type { HubEnv, HubServices } from './services.js';

/**
 * Builds the hub's Hono app. Errors from /hub/api are always JSON `{status, message, field?}`, whatever the
 * client accepts.
 *
 * @example
 * const app = buildApp(services, log);
 * createAdaptorServer({ fetch: app.fetch }).listen(8081);
 */
export function buildApp(services: HubServices, log: Logger, internal?: InternalContext, pool?: PoolApiContext, join?: JoinApiContext): Hono<HubEnv> {
  // Not strict: `/hub/api/` and `/hub/api` are the same route, as in JupyterHub.
  const app = new Hono<HubEnv>({ strict: false });
  app.onError((error, c) => {
    let status: number = 500;
    let body: { status: number; message: string; field?: string };
    if (error instanceof HubError) {
      status = HTTP_STATUS[error.code];
      body = { status, message: error.message, ...(error.field ? { field: error.field } : {}) };
    } else if (error instanceof InvalidTransitionError) {
      status = 409;
      body = { status, message: error.message };
    } else {
      log.error({ err: error.message, stack: error.stack, path: c.req.path }, 'unexpected error in a request');
      body = { status, message: 'internal error; the hub log has details' };
    }
    return c.json(body, status as 400);
  });
  app.notFound((c) => c.json({ status: 404, message: `no route for ${c.req.method} ${c.req.path}` }, 404));
  let reference: string | undefined;
  app.get('/hub/docs/api', (c) => c.html((reference ??= renderApiReference(services.version))));
  app.get('/hub/health', (c) => c.json({ status: 'ok', instances_ready: services.pool.ready().length }));
  // Before anything reads a body: larger ones are refused with 413, whether announced or streamed.
  app.use('/hub/*', limitBody(() => services.maxBodyBytes));
  // Before the user authentication step: these routes take the gateway secret, not a user's token.
  if (internal) app.route(INTERNAL_PREFIX, internalRoutes(services, internal));
  app.use('/hub/*', authenticate(services));
  app.route('/hub/api', apiRoutes(services));
  if (pool) {
    app.route('/hub/api', poolApiRoutes(pool));
    app.route('/hub', metricsRoutes(pool));
  }
  app.route('/hub', adminRoutes(services));
  if (join) app.route('/hub/api', joinApiRoutes(join));
  app.route('/hub', pageRoutes(services));
  return app;
}
