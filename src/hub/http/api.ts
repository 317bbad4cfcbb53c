// The REST API under /hub/api, in JupyterHub's shape where the two overlap.
import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import { usernameProblem } from '../../lib/names.js';
import { checkAccountName, checkPassword } from '../auth/account-policy.js';
import { hashPassword } from '../auth/credentials.js';
import { SERVICE_IDENTITY } from '../auth/identity.js';
import { BadRequestError, CredentialNotFoundError, ServerStartError, UserExistsError, UserNotFoundError } from '../errors.js';
import { UserExistsError as StoreUserExistsError } from '../store/errors.js';
import type { UserRecord } from '../store/types.js';
import { requireCaller, requireScope } from './auth.js';
import { readJson, readQuery } from './body.js';
import { instanceModel, serverModel, tokenModel, userModel } from './models.js';
import { buildOpenApi } from './openapi.js';
import { addSshKeyBody, createTokenBody, createUserBody, eventsQuery, extendServerBody, patchUserBody } from './schemas.js';
import { parseDuration } from '../../lib/duration.js';
import { DEFAULT_EXTENSION_MS, MAX_EXTENSION_MS } from '../cull/index.js';
import { parseSshKey, publicKeyLine } from '../../ssh/keys.js';
import { registerSshKey } from '../auth/ssh-keys.js';
import { startServerBodySchema } from './pool-api.js';
import type { HubEnv, HubServices } from './services.js';

/** Header the banner script on users' Jupyter pages sends when it polls their model. */
export const PAGE_HEADER = 'x-dspool-page';

function sshKeyModel(key: { id: string; algo: string; data: string; comment: string; fingerprint: string; created: string }) {
  const parsed = parseSshKey(`${key.algo} ${key.data}`);
  return {
    id: key.id, algo: key.algo, fingerprint: key.fingerprint, comment: key.comment, created: key.created,
    key: parsed instanceof Error ? `${key.algo} ${key.data}` : publicKeyLine(parsed, key.comment),
  };
}

/** A valid username from the path, or 400 naming why (never renamed). */
function pathUser(name: string): string {
  const problem = usernameProblem(name);
  if (problem) throw new BadRequestError(`invalid username "${name}": ${problem}`, 'name');
  return name;
}

/**
 * Builds the API routes (mounted at `/hub/api`).
 *
 * @example
 * app.route('/hub/api', apiRoutes(services));
 */
export function apiRoutes(s: HubServices): Hono<HubEnv> {
  const api = new Hono<HubEnv>();

  const loadUser = async (name: string): Promise<UserRecord> => {
    const user = await s.store.getUser(pathUser(name));
    if (!user) throw new UserNotFoundError(name);
    return user;
  };
  const model = (user: UserRecord) => {
    const session = s.sessions.active(user.name);
    return userModel(user, session, session ? s.sessions.poolFieldsOf(session.id) : undefined, s.culler.isExempt(user.name));
  };

  api.get('/', (c) => c.json({ version: s.version }));

  let document: Record<string, unknown> | undefined;
  api.get('/openapi.json', (c) => c.json((document ??= buildOpenApi(s.version))));

  // Any valid credential may ask who it is (JupyterHub's HubAuth does exactly this).
  api.get('/user', async (c) => {
    const caller = requireCaller(c);
    const who = caller.identity;
    if (who.user === SERVICE_IDENTITY) {
      return c.json({ kind: 'service', name: who.user, admin: true, roles: ['admin'], scopes: caller.scopes.toStrings(), session_id: null, token_id: null });
    }
    const user = await loadUser(who.user);
    // JupyterHub's RequestIdentity: the model plus what this very credential may do.
    return c.json({ ...model(user), scopes: caller.scopes.toStrings(), session_id: null, token_id: caller.token?.id ?? null });
  });

  // As JupyterHub: the users this credential's `list:users` covers (all of them, or only the filtered ones).
  api.get('/users', async (c) => {
    const caller = requireCaller(c);
    if (!caller.scopes.holds('list:users')) requireScope(c, 'list:users');
    const users = await s.store.listUsers();
    return c.json(users.filter((u) => caller.scopes.allows('list:users', u.name)).map(model));
  });

  api.get('/users/:name', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, ['read:users', 'read:servers'], name);
    // The banner script on the user's Jupyter pages polls here: a page seen is a page that can save when asked.
    if (c.req.header(PAGE_HEADER) !== undefined) s.culler.pageSeen(name);
    return c.json(model(await loadUser(name)));
  });

  api.post('/users/:name', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'admin:users', name);
    const body = await readJson(c, createUserBody);
    if (body.password !== undefined) checkPassword(body.password, name, s.accounts);
    // An existing user keeps their name (409 below); only a new account must not collide with a system one.
    if (!(await s.store.getUser(name))) await checkAccountName(name, s.accounts);
    try {
      const user = await s.store.createUser({
        name, admin: body.admin ?? false, passwordHash: body.password ? await hashPassword(body.password) : null,
      });
      s.events.record('user.created', `user ${name} created${user.admin ? ' (admin)' : ''}`, { user: name, data: { uid: user.uid } });
      return c.json(model(user), 201);
    } catch (error) {
      if (error instanceof StoreUserExistsError) throw new UserExistsError(name);
      throw error;
    }
  });

  api.patch('/users/:name', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'admin:users', name);
    const body = await readJson(c, patchUserBody);
    await loadUser(name);
    if (body.password !== undefined) checkPassword(body.password, name, s.accounts);
    const user = await s.store.updateUser(name, {
      admin: body.admin, disabled: body.disabled, passwordHash: body.password ? await hashPassword(body.password) : undefined,
    });
    if (body.cull_exempt !== undefined) {
      await s.culler.setExempt(name, body.cull_exempt);
      s.events.record('user.cull_exempt', `${name} is ${body.cull_exempt ? 'exempt from' : 'no longer exempt from'} idle culling`, { user: name });
    }
    s.revoke(name);
    // A disabled user keeps nothing running: no session, no route, no way in until enabled again.
    if (body.disabled === true) await s.sessions.stop(name, 'user disabled');
    return c.json(model(user));
  });

  api.delete('/users/:name', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'delete:users', name);
    await loadUser(name);
    await s.sessions.stop(name, 'user deleted');
    await s.store.deleteUser(name);
    s.revoke(name);
    s.events.record('user.deleted', `user ${name} deleted`, { user: name });
    return c.body(null, 204);
  });

  api.post('/users/:name/server', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'servers', name);
    const user = await loadUser(name);
    if (user.disabled) throw new BadRequestError(`user "${name}" is disabled`);
    const body = await readJson(c, startServerBodySchema);
    const session = await s.sessions.start(user, body.profile === undefined ? {} : { profile: body.profile });
    await s.sessions.settled(session.id, s.spawnWaitMs);
    const now = s.sessions.active(name) ?? (await s.store.getSession(session.id)) ?? session;
    if (now.state === 'failed') {
      throw new ServerStartError(name, `${name}'s server failed to start: ${now.reason ?? 'unknown reason'}`);
    }
    return c.json(serverModel(now, s.sessions.poolFieldsOf(now.id)), now.state === 'running' ? 201 : 202);
  });

  api.delete('/users/:name/server', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'delete:servers', name);
    await loadUser(name);
    await s.sessions.stop(name);
    return c.body(null, 204);
  });

  api.post('/users/:name/server/extend', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'servers', name);
    await loadUser(name);
    const body = await readJson(c, extendServerBody);
    const forMs = body.for === undefined ? DEFAULT_EXTENSION_MS : parseDuration(body.for);
    if (forMs === undefined || forMs <= 0 || forMs > MAX_EXTENSION_MS) {
      throw new BadRequestError(`for: "${String(body.for)}" is not a duration between 1 s and 7 days; write e.g. "1h" or milliseconds`, 'for');
    }
    const result = s.culler.extend(name, forMs);
    return c.json({ extended_until: result.extendedUntil, cull_at: result.cullAt });
  });

  api.get('/users/:name/server/progress', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'read:servers', name);
    await loadUser(name);
    const session = s.sessions.active(name) ?? (await s.store.latestSession(name, ''));
    return streamSSE(c, async (stream) => {
      if (!session) {
        await stream.writeSSE({ data: JSON.stringify({ progress: 100, failed: true, message: 'no server has been requested' }) });
        return;
      }
      if (session.state === 'running') {
        await stream.writeSSE({ data: JSON.stringify({ progress: 100, ready: true, message: 'Server ready', url: `/user/${name}/` }) });
        return;
      }
      if (session.state === 'stopped' || session.state === 'failed') {
        await stream.writeSSE({ data: JSON.stringify({ progress: 100, failed: true, message: session.reason ?? 'the server is not running' }) });
        return;
      }
      const queue: string[] = s.sessions.progressOf(session.id).map((e) => JSON.stringify(e));
      let wake: (() => void) | undefined;
      let finished = queue.some((e) => /"(ready|failed)":true/.test(e));
      const listener = (id: string, event: { ready?: boolean; failed?: boolean }) => {
        if (id !== session.id) return;
        queue.push(JSON.stringify(event));
        if (event.ready || event.failed) finished = true;
        wake?.();
      };
      s.sessions.on('progress', listener);
      stream.onAbort(() => {
        finished = true;
        wake?.();
      });
      try {
        for (;;) {
          while (queue.length > 0) await stream.writeSSE({ data: queue.shift() ?? '' });
          if (finished || stream.aborted) break;
          await new Promise<void>((resolve) => {
            wake = resolve;
            setTimeout(resolve, 15_000);
          });
          wake = undefined;
          if (queue.length === 0 && !finished) await stream.write(': keepalive\n\n');
        }
      } finally {
        s.sessions.off('progress', listener);
      }
    });
  });

  api.get('/users/:name/tokens', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'read:tokens', name);
    await loadUser(name);
    return c.json({ api_tokens: (await s.store.listTokens(name)).map((t) => tokenModel(t)), oauth_tokens: [] });
  });

  api.post('/users/:name/tokens', async (c) => {
    const name = pathUser(c.req.param('name'));
    const caller = requireScope(c, 'tokens', name);
    await loadUser(name);
    const body = await readJson(c, createTokenBody);
    const issued = await s.identities.issueToken(name, {
      note: body.note, scopes: body.scopes, expiresInSeconds: body.expires_in, requester: caller.scopes,
    });
    s.events.record('token.created', `token ${issued.record.id} created for ${name}`, { user: name, data: { id: issued.record.id } });
    return c.json(tokenModel(issued.record, issued.token), 201);
  });

  api.delete('/users/:name/tokens/:id', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'tokens', name);
    if (!(await s.store.deleteToken(name, c.req.param('id')))) {
      throw new CredentialNotFoundError(name, 'token', c.req.param('id'));
    }
    s.revoke(name);
    s.events.record('token.deleted', `token ${c.req.param('id')} of ${name} deleted`, { user: name });
    return c.body(null, 204);
  });

  api.get('/users/:name/keys', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'read:users:keys', name);
    await loadUser(name);
    return c.json((await s.store.listSshKeys(name)).map(sshKeyModel));
  });

  api.post('/users/:name/keys', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'users:keys', name);
    await loadUser(name);
    const { key: text } = await readJson(c, addSshKeyBody);
    const record = await registerSshKey(s, name, text);
    return c.json(sshKeyModel(record), 201);
  });

  api.delete('/users/:name/keys/:id', async (c) => {
    const name = pathUser(c.req.param('name'));
    requireScope(c, 'users:keys', name);
    if (!(await s.store.deleteSshKey(name, c.req.param('id')))) {
      throw new CredentialNotFoundError(name, 'SSH key', c.req.param('id'));
    }
    return c.body(null, 204);
  });

  api.get('/instances', (c) => {
    requireScope(c, 'read:instances');
    return c.json(s.pool.list().map((v) => instanceModel(v, s.sessions.countOn(v.id))));
  });

  api.get('/events', async (c) => {
    requireScope(c, 'admin:events');
    const { limit, after } = readQuery(c, eventsQuery);
    const events = await s.store.listEvents({ limit, afterId: after });
    return c.json(events.map((e) => ({ id: e.id, time: e.time, kind: e.kind, user: e.user, instance: e.instanceId, message: e.message, data: e.data })));
  });

  return api;
}
