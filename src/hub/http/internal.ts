// Routes only the gateway's SSH front door calls (with the gateway secret): checking SSH credentials and
// finding — or starting — the session a user's SSH connection lands on, with progress for the banner.
import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import {
  SSH_AUTH_PATH, SSH_LOCATE_PATH, USER_HOST_REDEEM_PATH, sshAuthBody, sshLocateBody, userHostRedeemBody, type LocateLine,
} from '../../protocol/gateway.js';
import { usernameProblem } from '../../lib/names.js';
import { sameSecret } from '../../lib/secret.js';
import { POOL_STOP_CAUSES } from '../sessions/state.js';
import { BadRequestError, ForbiddenError } from '../errors.js';
import { readJson } from './body.js';
import type { HubEnv, HubServices } from './services.js';

/** Path prefix of these routes; the gateway never proxies it from outside. */
export const INTERNAL_PREFIX = '/hub/internal';

/** What these routes need besides the services. */
export interface InternalContext {
  readonly gatewaySecret: string;
}

/**
 * Builds the internal routes (mounted at `/hub/internal`).
 *
 * @example
 * app.route(INTERNAL_PREFIX, internalRoutes(services, { gatewaySecret }));
 */
export function internalRoutes(s: HubServices, ctx: InternalContext): Hono<HubEnv> {
  const internal = new Hono<HubEnv>();
  internal.use('*', async (c, next) => {
    const auth = c.req.header('authorization') ?? '';
    if (!auth.startsWith('Bearer ') || !sameSecret(auth.slice(7), ctx.gatewaySecret)) throw new ForbiddenError('gateway credentials required');
    await next();
  });

  internal.post(SSH_AUTH_PATH.slice(INTERNAL_PREFIX.length), async (c) => {
    const body = await readJson(c, sshAuthBody);
    if (usernameProblem(body.user)) return c.json({ verdict: 'unknown' });
    if (body.method === 'password') {
      const result = await s.logins.login('ssh', body.user, body.password, body.address);
      return c.json(result.verdict === 'limited' ? { verdict: 'limited', retryAfterMs: result.retryAfterMs } : { verdict: result.verdict });
    }
    const user = await s.store.getUser(body.user);
    if (!user) return c.json({ verdict: 'unknown' });
    if (user.disabled) return c.json({ verdict: 'denied' });
    return c.json({ verdict: (await s.store.hasSshKey(body.user, body.algo, body.key)) ? 'allowed' : 'denied' });
  });

  // The user-host handshake's last leg: the gateway trades the code that arrived at `user`'s host for a login.
  internal.post(USER_HOST_REDEEM_PATH.slice(INTERNAL_PREFIX.length), async (c) => {
    const { code, user } = await readJson(c, userHostRedeemBody);
    return c.json({ cookie: (await s.hostLogins.redeem(code, user)) ?? null });
  });

  internal.post(SSH_LOCATE_PATH.slice(INTERNAL_PREFIX.length), async (c) => {
    const { user: name, interactive } = await readJson(c, sshLocateBody);
    const problem = usernameProblem(name);
    if (problem) throw new BadRequestError(`invalid username: ${problem}`, 'user');
    c.header('content-type', 'application/x-ndjson');
    return stream(c, async (out) => {
      const send = (line: LocateLine) => out.write(`${JSON.stringify(line)}\n`);
      const user = await s.store.getUser(name);
      if (!user || user.disabled) return void (await send({ error: `user ${name} cannot log in` }));
      let session = s.sessions.active(name);
      if (!session || session.state === 'stopping') {
        // Stopped by the pool (idle, a drain deadline): only a person's intent starts it again, never a connection
        // that may be an editor reconnecting on its own. The front door asks again once a channel wants a terminal.
        const held = interactive === true ? undefined : await heldBecause(s, name);
        if (held !== undefined) return void (await send({ held }));
        await send({ progress: 'starting your session…' });
        session = await s.sessions.start(user);
      }
      if (session.state !== 'running') {
        const onProgress = (id: string, event: { message: string }) => {
          if (id === session?.id) void send({ progress: event.message });
        };
        s.sessions.on('progress', onProgress);
        try {
          await s.sessions.settled(session.id, 300_000);
        } finally {
          s.sessions.off('progress', onProgress);
        }
        session = s.sessions.active(name) ?? (await s.store.getSession(session.id)) ?? session;
      }
      if (session.state !== 'running' || !session.instanceId) {
        return void (await send({ error: `your session could not start: ${session.reason ?? session.state}` }));
      }
      const instance = s.pool.get(session.instanceId);
      if (!instance?.address || instance.sshPort === null) {
        return void (await send({ error: `instance ${session.instanceId} has no SSH server` }));
      }
      await send({ progress: `connecting to instance ${instance.id}` });
      await send({ target: { host: instance.address, port: instance.sshPort, ...(instance.sshHostKey ? { hostKey: instance.sshHostKey } : {}) } });
    });
  });
  return internal;
}

/**
 * Why a connection that is not interactive does not start `user`'s server: their newest server was stopped by the
 * pool (`POOL_STOP_CAUSES`) and nothing has started one since. Undefined when such a connection may start one
 * (never had a server, stopped it themselves, or lost it with an instance).
 */
async function heldBecause(s: HubServices, user: string): Promise<string | undefined> {
  const last = await s.store.latestSession(user, '');
  if (!last || !(POOL_STOP_CAUSES as readonly string[]).includes(last.stopCause ?? '')) return undefined;
  const at = (last.stopped ?? new Date().toISOString()).slice(11, 16);
  const why = last.stopCause === 'idle' ? 'it did no work for its idle timeout' : 'its instance was drained';
  return `your server was stopped at ${at} UTC (${why}). A connection that is not an interactive login — an editor `
    + 'such as VS Code reconnecting on its own, scp, sftp, `ssh host command` — does not start it again. '
    + `Start it with an interactive login (ssh -t), on the pool's web page, or with POST /hub/api/users/${user}/server; then connect again.`;
}
