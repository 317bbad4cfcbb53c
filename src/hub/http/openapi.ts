// The REST API's contract as data: every route under /hub/api with its scopes, body and responses, built into
// an OpenAPI 3.1 document from the same zod schemas that validate requests. A test checks that this list and
// the hub's real route table match, and that every example validates against its schema.
import { z } from 'zod';
import type { ScopeName } from '../auth/scopes.js';
import {
  createTokenBody, createUserBody, errorSchema, eventSchema, instanceSchema, patchUserBody, requestIdentitySchema, serverSchema,
  tokenListSchema, tokenSchema, userSchema, versionSchema, sshKeySchema, addSshKeyBody, extendServerBody, extendResultSchema,
} from './schemas.js';
import { joinTokenBodySchema, joinTokenSchema } from './join-api.js';
import { drainBodySchema, poolSizeSchema, profileJsonSchema, protectBodySchema, queueEntrySchema, scaleBodySchema, startServerBodySchema } from './pool-api.js';

/** One response of a documented route. */
export interface ResponseDoc {
  readonly description: string;
  readonly schema?: z.ZodType;
  /** `text/event-stream` and other non-JSON bodies. */
  readonly contentType?: string;
  readonly example?: unknown;
}

/** One documented route (path in Hono's `:param` form, relative to `/hub/api`). */
export interface RouteDoc {
  readonly method: 'get' | 'post' | 'patch' | 'put' | 'delete';
  readonly path: string;
  readonly summary: string;
  /**
   * Token scopes that allow the call, any one of them (JupyterHub's names where they exist). On a route with
   * `:name`, a scope filtered to that user (`servers!user=alice`, `servers!server=alice/`) counts. Empty: any
   * valid credential, or none at all when `public`.
   */
  readonly scopes: readonly ScopeName[];
  /** No credential needed. @default false */
  readonly public?: boolean;
  readonly body?: { readonly schema: z.ZodType; readonly example?: unknown };
  readonly responses: Readonly<Record<number, ResponseDoc>>;
}

const err = (description: string): ResponseDoc => ({ description, schema: errorSchema });
const userExample = {
  kind: 'user', name: 'alice', admin: false, groups: [], roles: ['user'], server: '/user/alice/', pending: null,
  created: '2026-11-23T10:00:00.000Z', last_activity: '2026-11-23T10:05:00.000Z', auth_state: null, uid: 20001, disabled: false, cull_exempt: false,
  servers: {
    '': {
      name: '', ready: true, pending: null, stopped: false, url: '/user/alice/', progress_url: '/hub/api/users/alice/server/progress',
      started: '2026-11-23T10:01:00.000Z', last_activity: '2026-11-23T10:05:00.000Z', user_options: {}, state: {},
      instance: 'i-3f9c2a', session_state: 'running',
    },
  },
};
const serverExample = userExample.servers[''];
const tokenExample = {
  id: 'tQ2x9a', kind: 'api_token', token: 'dsp_Zm9vYmFyYmF6cXV4', user: 'alice', roles: [], note: 'ci', scopes: ['inherit'],
  created: '2026-11-23T10:00:00.000Z', expires_at: null, last_activity: null, session_id: null,
};

/** Every route under /hub/api. */
export const API_ROUTES: readonly RouteDoc[] = [
  { method: 'get', path: '/', summary: 'The hub\'s version', scopes: [], public: true, responses: { 200: { description: 'version', schema: versionSchema, example: { version: '0.1.0' } } } },
  {
    method: 'get', path: '/openapi.json', summary: 'This document', scopes: [], public: true,
    responses: { 200: { description: 'OpenAPI 3.1 document', schema: z.record(z.string(), z.unknown()) } },
  },
  {
    method: 'get', path: '/user', summary: 'The caller\'s own model', scopes: [],
    responses: { 200: { description: 'the caller', schema: requestIdentitySchema, example: { ...userExample, scopes: ['access:servers!user=alice', 'read:users!user=alice'], session_id: null, token_id: 'tQ2x9a' } }, 403: err('no valid credential') },
  },
  {
    method: 'get', path: '/users', summary: 'The users the credential\'s list:users covers (every user for an admin, yourself for a user)', scopes: ['list:users'],
    responses: { 200: { description: 'users', schema: z.array(userSchema), example: [userExample] }, 403: err('no valid credential, or not an admin') },
  },
  {
    method: 'get', path: '/users/:name', summary: 'One user', scopes: ['read:users', 'read:servers'],
    responses: { 200: { description: 'the user', schema: userSchema, example: userExample }, 400: err('invalid username'), 403: err('another user'), 404: err('no such user') },
  },
  {
    method: 'post', path: '/users/:name', summary: 'Create a user (the name is a lowercase Unix name, never renamed)', scopes: ['admin:users'],
    body: { schema: createUserBody, example: { admin: false, password: 'a-long-passphrase' } },
    responses: { 201: { description: 'created', schema: userSchema }, 400: err('invalid username or body'), 403: err('not an admin'), 409: err('the name is taken') },
  },
  {
    method: 'patch', path: '/users/:name', summary: 'Change admin, password or disabled', scopes: ['admin:users'],
    body: { schema: patchUserBody, example: { disabled: true } },
    responses: { 200: { description: 'the user', schema: userSchema }, 400: err('bad body'), 403: err('not an admin'), 404: err('no such user') },
  },
  {
    method: 'delete', path: '/users/:name', summary: 'Stop the user\'s server and delete the user (notebooks stay on the share)', scopes: ['delete:users'],
    responses: { 204: { description: 'deleted' }, 403: err('not an admin'), 404: err('no such user') },
  },
  {
    method: 'post', path: '/users/:name/server', summary: 'Start the user\'s server (optionally with a profile from pool.yaml)', scopes: ['servers'],
    body: { schema: startServerBodySchema, example: { profile: 'small' } },
    responses: {
      201: { description: 'running (already, or within 10 s)', schema: serverSchema, example: serverExample },
      202: { description: 'still starting; follow progress_url', schema: serverSchema },
      400: err('disabled user or bad name'), 403: err('another user'), 404: err('no such user'), 500: err('the start failed'),
    },
  },
  {
    method: 'delete', path: '/users/:name/server', summary: 'Stop the user\'s server', scopes: ['delete:servers'],
    responses: { 204: { description: 'stopped (or was not running)' }, 403: err('another user'), 404: err('no such user') },
  },
  {
    method: 'post', path: '/users/:name/server/extend', summary: 'Keep the user\'s idle server running for a while (postpones the idle cull)', scopes: ['servers'],
    body: { schema: extendServerBody, example: { for: '1h' } },
    responses: {
      200: { description: 'kept until', schema: extendResultSchema, example: { extended_until: '2026-11-23T11:05:00.000Z', cull_at: null } },
      400: err('bad duration'), 403: err('another user'), 404: err('no such user'), 409: err('no running server'),
    },
  },
  {
    method: 'get', path: '/users/:name/server/progress', summary: 'Start progress as an event stream (JupyterHub\'s format)', scopes: ['read:servers'],
    responses: {
      200: {
        description: 'events `data: {"progress": 0-100, "message", "ready"?, "failed"?, "url"?}` until ready or failed',
        contentType: 'text/event-stream',
      },
      403: err('another user'),
    },
  },
  {
    method: 'get', path: '/users/:name/tokens', summary: 'The user\'s API tokens (never the secrets)', scopes: ['read:tokens'],
    responses: { 200: { description: 'tokens', schema: tokenListSchema }, 403: err('another user') },
  },
  {
    method: 'post', path: '/users/:name/tokens', summary: 'Create an API token; the secret is in this response only', scopes: ['tokens'],
    body: { schema: createTokenBody, example: { note: 'ci', expires_in: 86400 } },
    responses: { 201: { description: 'created', schema: tokenSchema, example: tokenExample }, 400: err('bad body'), 403: err('another user') },
  },
  {
    method: 'delete', path: '/users/:name/tokens/:id', summary: 'Revoke a token', scopes: ['tokens'],
    responses: { 204: { description: 'revoked' }, 403: err('another user'), 404: err('no such token') },
  },
  {
    method: 'get', path: '/users/:name/keys', summary: 'The user\'s SSH public keys (for the SSH front door)', scopes: ['read:users:keys'],
    responses: { 200: { description: 'keys', schema: z.array(sshKeySchema) }, 403: err('another user') },
  },
  {
    method: 'post', path: '/users/:name/keys', summary: 'Register an SSH public key', scopes: ['users:keys'],
    body: { schema: addSshKeyBody, example: { key: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl alice@laptop' } },
    responses: { 201: { description: 'registered', schema: sshKeySchema }, 400: err('not a public key'), 409: err('already registered') },
  },
  {
    method: 'delete', path: '/users/:name/keys/:id', summary: 'Remove an SSH public key', scopes: ['users:keys'],
    responses: { 204: { description: 'removed' }, 404: err('no such key') },
  },
  {
    method: 'get', path: '/instances/:id', summary: 'One instance with capacity, protection and drain state', scopes: ['read:instances'],
    responses: { 200: { description: 'the instance', schema: instanceSchema }, 403: err('not an admin'), 404: err('no such instance') },
  },
  {
    method: 'post', path: '/instances/join-tokens', summary: 'A one-use, expiring join token and the command that makes a machine an instance (provider static)', scopes: ['admin:instances'],
    body: { schema: joinTokenBodySchema, example: { expires_in: '30m' } },
    responses: {
      201: {
        description: 'the token (shown once) and the command', schema: joinTokenSchema,
        example: {
          token: 'dspj_Zm9vYmFy', expires_at: '2026-11-23T11:00:00.000Z', hub_url: 'https://10.0.0.1:8082', hub_fingerprint: 'sha256:3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f',
          command: 'dspool agent join https://10.0.0.1:8082 --token dspj_Zm9vYmFy --hub-fingerprint sha256:3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f',
        },
      },
      400: err('bad expires_in'), 403: err('not an admin'),
    },
  },
  {
    method: 'post', path: '/instances/:id/drain', summary: 'Stop new placements on an instance and remove it once its sessions end (or the deadline passes)', scopes: ['admin:instances'],
    body: { schema: drainBodySchema, example: { deadline: '30m' } },
    responses: { 202: { description: 'draining', schema: instanceSchema }, 404: err('no such instance'), 409: err('the instance is protected') },
  },
  {
    method: 'post', path: '/instances/:id/protect', summary: 'Protect an instance from removal, or lift it', scopes: ['admin:instances'],
    body: { schema: protectBodySchema, example: { protected: true } },
    responses: { 200: { description: 'the instance', schema: instanceSchema }, 404: err('no such instance') },
  },
  {
    method: 'get', path: '/pool', summary: 'The pool\'s size: desired, configured, ready, draining', scopes: ['read:instances'],
    responses: { 200: { description: 'the pool', schema: poolSizeSchema }, 403: err('not an admin') },
  },
  {
    method: 'patch', path: '/pool', summary: 'Scale the pool; a scale-in drains the instances with the fewest sessions, never kills', scopes: ['admin:instances'],
    body: { schema: scaleBodySchema, example: { instances: 3 } },
    responses: { 202: { description: 'scaling', schema: poolSizeSchema }, 400: err('not a size between 0 and 1000'), 403: err('not an admin') },
  },
  {
    method: 'get', path: '/queue', summary: 'Requests waiting for an instance with room, in order', scopes: ['read:instances'],
    responses: { 200: { description: 'the queue', schema: z.array(queueEntrySchema) }, 403: err('not an admin') },
  },
  {
    method: 'get', path: '/profiles', summary: 'Profiles users may pick when starting a server', scopes: [],
    responses: { 200: { description: 'profiles', schema: z.array(profileJsonSchema) } },
  },
  {
    method: 'get', path: '/instances', summary: 'The pool\'s instances', scopes: ['read:instances'],
    responses: { 200: { description: 'instances', schema: z.array(instanceSchema) }, 403: err('not an admin') },
  },
  {
    method: 'get', path: '/events', summary: 'The audit trail, newest first (`limit`, `after` query parameters)', scopes: ['admin:events'],
    responses: { 200: { description: 'events', schema: z.array(eventSchema) }, 403: err('not an admin') },
  },
];

/** Hono's `/users/:name` as OpenAPI's `/users/{name}`. */
export const openApiPath = (path: string): string => path.replace(/:([A-Za-z_]+)/g, '{$1}');

/**
 * Builds the OpenAPI 3.1 document for `GET /hub/api/openapi.json`.
 *
 * @example
 * const doc = buildOpenApi('0.1.0', API_ROUTES);
 */
export function buildOpenApi(version: string, routes: readonly RouteDoc[] = API_ROUTES): Record<string, unknown> {
  // Every schema a route uses gets an id (anonymous ones a generated one), so the whole set converts at once with
  // references between components instead of inlined copies.
  const refOf = (schema: z.ZodType, fallbackId: string): { $ref: string } => {
    let id = z.globalRegistry.get(schema)?.id;
    if (!id) {
      id = fallbackId;
      schema.meta({ id });
    }
    return { $ref: `#/components/schemas/${id}` };
  };
  const name = (route: RouteDoc, suffix: string) =>
    `${route.method[0]?.toUpperCase()}${route.method.slice(1)}${route.path.replace(/[/:.]+([a-z])?/g, (_m, ch: string | undefined) => (ch ?? '').toUpperCase())}${suffix}`;
  const paths: Record<string, Record<string, unknown>> = {};
  for (const route of routes) {
    const full = `/hub/api${route.path === '/' ? '/' : route.path}`;
    const params = [...route.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
    const responses: Record<string, unknown> = {};
    for (const [status, response] of Object.entries(route.responses)) {
      const contentType = response.contentType ?? 'application/json';
      responses[status] = {
        description: response.description,
        ...(response.schema || response.contentType
          ? {
              content: {
                [contentType]: {
                  ...(response.schema ? { schema: refOf(response.schema, name(route, `Response${status}`)) } : { schema: { type: 'string' } }),
                  ...(response.example === undefined ? {} : { example: response.example }),
                },
              },
            }
          : {}),
      };
    }
    (paths[openApiPath(full)] ??= {})[route.method] = {
      summary: route.summary,
      ...(params.length ? { parameters: params } : {}),
      ...(route.public ? { security: [] } : { security: [{ token: [...route.scopes] }], 'x-scopes': [...route.scopes] }),
      ...(route.body
        ? {
            requestBody: {
              required: true,
              content: { 'application/json': { schema: refOf(route.body.schema, name(route, 'Body')), ...(route.body.example === undefined ? {} : { example: route.body.example }) } },
            },
          }
        : {}),
      responses,
    };
  }
  const converted = z.toJSONSchema(z.globalRegistry, {
    target: 'draft-2020-12', unrepresentable: 'any', io: 'output', uri: (id) => `#/components/schemas/${id}`,
  }) as { schemas: Record<string, Record<string, unknown>> };
  const schemas: Record<string, unknown> = {};
  for (const [id, schema] of Object.entries(converted.schemas)) {
    const { $schema: _dialect, $id: _id, ...rest } = schema;
    schemas[id] = rest;
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'dspool hub API',
      version,
      description: "JupyterHub-compatible where the routes overlap; errors are always {status, message, field?}.",
    },
    servers: [{ url: '/' }],
    components: {
      securitySchemes: {
        token: { type: 'apiKey', in: 'header', name: 'Authorization', description: '`Authorization: token <api token>`' },
      },
      schemas,
    },
    paths,
  };
}
