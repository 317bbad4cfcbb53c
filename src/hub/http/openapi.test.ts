import type { JoinApiContext } from './join-api.js';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VERSION } from '../../lib/version.js';
import { createLogger } from '../../lib/log.js';
import { buildApp } from './app.js';
import { renderApiReference } from './api-docs.js';
import { API_ROUTES, buildOpenApi, openApiPath } from './openapi.js';
import type { PoolApiContext } from './pool-api.js';
import type { HubServices } from './services.js';

// Only the route table is read: no handler runs, so the services are never touched.
const app = buildApp({} as HubServices, createLogger('test', 'silent'), { gatewaySecret: 'x' }, {} as PoolApiContext, {} as JoinApiContext);
const served = new Set(
  app.routes
    .filter((r) => r.path.startsWith('/hub/api') && r.method !== 'ALL')
    .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/\/$/, '') || '/'}`),
);
const documented = new Set(API_ROUTES.map((r) => `${r.method} ${`/hub/api${r.path}`.replace(/\/$/, '')}`));

describe('the OpenAPI document', () => {
  it('documents every API route the hub serves', () => {
    expect([...served].filter((r) => !documented.has(r))).toEqual([]);
  });

  it('documents no route the hub does not serve', () => {
    expect([...documented].filter((r) => !served.has(r))).toEqual([]);
  });

  it('has examples that validate against their own schemas', () => {
    let checked = 0;
    for (const route of API_ROUTES) {
      if (route.body?.example !== undefined) {
        expect(() => route.body?.schema.parse(route.body.example), `${route.method} ${route.path} body`).not.toThrow();
        checked++;
      }
      for (const [status, response] of Object.entries(route.responses)) {
        if (response.example === undefined || !response.schema) continue;
        expect(() => response.schema?.parse(response.example), `${route.method} ${route.path} ${status}`).not.toThrow();
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(5);
  });

  it('renders a self-contained HTML reference with every route', () => {
    const html = renderApiReference('9.9.9');
    for (const route of API_ROUTES) expect(html).toContain(`/hub/api${route.path === '/' ? '/' : openApiPath(route.path)}`);
    expect(html).not.toMatch(/<script|<link|src="http/);
  });

  it('is the same as the committed docs/api.html (run `npm run docs` after changing a route)', () => {
    const committed = readFileSync(new URL('../../../docs/api.html', import.meta.url), 'utf8');
    expect(committed).toBe(renderApiReference(VERSION));
  });

  it('is OpenAPI 3.1 with the scopes each route needs and shared component schemas', () => {
    const doc = buildOpenApi('9.9.9') as {
      openapi: string;
      paths: Record<string, Record<string, { 'x-scopes'?: string[]; security: unknown[] }>>;
      components: { schemas: Record<string, unknown> };
    };
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.paths[openApiPath('/hub/api/users/:name/server')]?.post?.['x-scopes']).toEqual(['servers']);
    expect(doc.paths['/hub/api/']?.get?.security).toEqual([]);
    expect(Object.keys(doc.components.schemas)).toEqual(expect.arrayContaining(['User', 'Server', 'Token', 'Error', 'Instance']));
  });
});
