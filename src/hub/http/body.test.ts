// The hub's body limit over a real HTTP server: an oversized body gets a 413 the client can read (not a reset).
import { createAdaptorServer } from '@hono/node-server';
import { Hono } from 'hono';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { limitBody, readJson } from './body.js';

describe('limitBody', () => {
  let server: Server;
  let url = '';

  beforeAll(async () => {
    const app = new Hono();
    app.use('*', limitBody(() => 1024 * 1024));
    app.post('/echo', async (c) => c.json({ length: (await readJson(c, z.strictObject({ note: z.string() }))).note.length }));
    server = createAdaptorServer({ fetch: app.fetch }) as Server;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('answers 413 to an announced body over the limit, every time, and serves the next request', async () => {
    for (let i = 0; i < 10; i++) {
      const refused = await fetch(`${url}/echo`, { method: 'POST', body: JSON.stringify({ note: 'x'.repeat(2 * 1024 * 1024) }) });
      expect(refused.status).toBe(413);
      expect(((await refused.json()) as { message: string }).message).toContain('1048576');
      const fine = await fetch(`${url}/echo`, { method: 'POST', body: JSON.stringify({ note: 'small' }) });
      expect(await fine.json()).toEqual({ length: 5 });
    }
  });

  it('answers 413 to a streamed body once it passes the limit', async () => {
    const chunk = new TextEncoder().encode('x'.repeat(256 * 1024));
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent++ < 8) controller.enqueue(chunk);
        else controller.close();
      },
    });
    const refused = await fetch(`${url}/echo`, { method: 'POST', body, duplex: 'half' } as RequestInit);
    expect(refused.status).toBe(413);
  });
});
