// The gateway's request pipeline: an ordered list of small named steps (classify, authenticate, authorize,
// check origin, find route, rewrite headers, forward), shared by plain HTTP requests and WebSocket upgrades.
// Each step lives in pipeline/; this file only runs them in order.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Socket } from 'node:net';
import { isPersonRequest } from './activity.js';
import { Exchange, USER_PREFIX, readHeaders, type ProxyContext, type StepResult } from './pipeline/exchange.js';
import { forward, ignoreError } from './pipeline/forward.js';
import { respond } from './pipeline/reply.js';
import { authenticate, authorize, checkOrigin, classifyPath, findCredential, findRoute, upstreamHeaders } from './pipeline/steps.js';
import { classifyHost, confirmAdmin, userHostCallback } from './pipeline/hosts.js';
import { USER_HOST_CALLBACK_PATH } from '../protocol/gateway.js';
import type { ResolvedRoute } from './hub-link.js';

export type { Backend } from './upstream.js';
export type { ProxyContext } from './pipeline/exchange.js';

/**
 * Runs the pipeline for a plain HTTP request.
 *
 * @example
 * server.on('request', (req, res) => handleRequest(ctx, req, res));
 */
export function handleRequest(ctx: ProxyContext, req: IncomingMessage, res: ServerResponse): void {
  run(new Exchange(ctx, req, res, undefined, undefined));
}

/**
 * Runs the pipeline for a WebSocket upgrade.
 *
 * @example
 * server.on('upgrade', (req, socket, head) => handleUpgrade(ctx, req, socket, head));
 */
export function handleUpgrade(ctx: ProxyContext, req: IncomingMessage, socket: Duplex, head: Buffer): void {
  socket.on('error', ignoreError);
  if ('setNoDelay' in socket) (socket as Socket).setNoDelay(true);
  run(new Exchange(ctx, req, undefined, socket, head));
}

function run(ex: Exchange): void {
  ex.ctx.counters.requests++;
  readHeaders(ex);
  const onHost = classifyHost(ex);
  if (onHost !== undefined) return respond(ex, onHost);
  if (ex.hostUser !== '' && (ex.req.url ?? '').startsWith(`${USER_HOST_CALLBACK_PATH}?`)) {
    userHostCallback(ex).then(
      (result) => {
        if (!ex.gone && result !== undefined) respond(ex, result);
      },
      (error: unknown) => {
        ex.ctx.log.error({ err: error }, 'user host handshake failed');
        if (!ex.gone) respond(ex, { status: 500, code: 'invalid_state', message: 'internal error' });
      },
    );
    return;
  }
  const reply = classifyPath(ex);
  if (reply !== undefined) return respond(ex, reply);
  if (ex.user === '') return forward(ex, ex.ctx.hub, upstreamHeaders(ex, undefined), 0);
  const missing = findCredential(ex);
  if (missing !== undefined) return respond(ex, missing);
  const auth = authenticate(ex);
  if (auth === undefined) return afterAuthentication(ex);
  if (!(auth instanceof Promise)) return respond(ex, auth);
  auth.then(
    (result) => {
      if (ex.gone) return;
      if (result !== undefined) respond(ex, result);
      else afterAuthentication(ex);
    },
    (error: unknown) => {
      ex.ctx.log.error({ err: error }, 'auth step failed');
      if (!ex.gone) respond(ex, { status: 500, code: 'invalid_state', message: 'internal error' });
    },
  );
}

/** The steps after authentication, in order; each may stop the request with a reply. */
const STEPS_AFTER_AUTH: readonly ((ex: Exchange) => StepResult)[] = [authorize, confirmAdmin, checkOrigin, findRoute];

function afterAuthentication(ex: Exchange): void {
  for (const step of STEPS_AFTER_AUTH) {
    const reply = step(ex);
    if (reply !== undefined) return respond(ex, reply);
  }
  const route = ex.route as ResolvedRoute;
  notePerson(ex);
  forward(ex, route, upstreamHeaders(ex, route.authorization), 0);
}

/** Tells the hub's idle culler about requests a person made (never polling or reconnects). */
function notePerson(ex: Exchange): void {
  const url = ex.req.url ?? '';
  const path = url.slice(Math.min(url.length, USER_PREFIX.length + ex.user.length + 1));
  if (isPersonRequest({ method: ex.req.method ?? 'GET', path, upgrade: ex.upgrade, fetchMode: ex.fetchMode, accept: ex.accept })) {
    ex.ctx.personRequest(ex.user);
  }
}
