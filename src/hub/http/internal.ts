// Routes only the gateway's SSH front door calls (with the gateway secret): checking SSH credentials and
// finding — or starting — the session a user's SSH connection lands on, with progress for the banner.
import { Hono } from 'hono';
import { stream } from 'hono/streaming';
import { z } from 'zod';
import { usernameProblem } from '../../lib/names.js';
import { sameSecret } from '../auth/credentials.js';
import { BadRequestError, ForbiddenError } from '../errors.js';
import { readJson } from './body.js';
import type { HubEnv, HubServices } from './services.js';

/** Path prefix of these routes; the gateway never proxies it from outside. */
export const INTERNAL_PREFIX = '/hub/internal';

export const sshAuthBody = z.discriminatedUnion('method', [
  z.strictObject({ method: z.literal('password'), user: z.string(), password: z.string() }),
  z.strictObject({ method: z.literal('publickey'), user: z.string(), algo: z.string(), key: z.string().describe('wire form, base64') }),
]);
export const sshLocateBody = z.strictObject({ user: z.string() });

/** One line of the locate stream (NDJSON): progress for the user, then the target or an error. */
export type LocateLine = { progress: string } | { target: { host: string; port: number; hostKey?: string } } | { error: string };

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

  internal.post('/ssh/auth', async (c) => {
    const body = await readJson(c, sshAuthBody);
    if (usernameProblem(body.user)) return c.json({ verdict: 'unknown' });
    if (body.method === 'password') return c.json({ verdict: await s.identities.checkPassword(body.user, body.password) });
    const user = await s.store.getUser(body.user);
    if (!user) return c.json({ verdict: 'unknown' });
    if (user.disabled) return c.json({ verdict: 'denied' });
    return c.json({ verdict: (await s.store.hasSshKey(body.user, body.algo, body.key)) ? 'allowed' : 'denied' });
  });

  internal.post('/ssh/locate', async (c) => {
    const { user: name } = await readJson(c, sshLocateBody);
    const problem = usernameProblem(name);
    if (problem) throw new BadRequestError(`invalid username: ${problem}`, 'user');
    c.header('content-type', 'application/x-ndjson');
    return stream(c, async (out) => {
      const send = (line: LocateLine) => out.write(`${JSON.stringify(line)}\n`);
      const user = await s.store.getUser(name);
      if (!user || user.disabled) return void (await send({ error: `user ${name} cannot log in` }));
      let session = s.sessions.active(name);
      if (!session || session.state === 'stopping') {
        await send({ progress: 'dspool: starting your session…' });
        session = await s.sessions.start(user);
      }
      if (session.state !== 'running') {
        const onProgress = (id: string, event: { message: string }) => {
          if (id === session?.id) void send({ progress: `dspool: ${event.message}` });
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
      await send({ progress: `dspool: connecting to instance ${instance.id}` });
      await send({ target: { host: instance.address, port: instance.sshPort, ...(instance.sshHostKey ? { hostKey: instance.sshHostKey } : {}) } });
    });
  });
  return internal;
}
