import { Hono } from 'hono';
import { describe, expect, it } from 'vitest';
import { signClientAddress } from '../../protocol/gateway.js';
import { clientAddress, csrfInput, csrfValid, originProblem, safeNext } from './forms.js';
import type { HubEnv } from './services.js';

describe('safeNext', () => {
  it('keeps paths of this site as they are', () => {
    expect(safeNext('/user/alice/tree?x=1#y')).toBe('/user/alice/tree?x=1#y');
    expect(safeNext('/hub/home')).toBe('/hub/home');
  });

  it.each([
    ['/\t/evil.example'], ['/%09/evil.example'], ['//evil.example'], ['/\\evil.example'], ['/\\/evil.example'],
    ['https://evil.example/'], ['javascript:alert(1)'], ['/.//evil.example'], ['/\n/evil.example'], [' /hub/home'],
    ['/%5Cevil.example'], [''], [undefined],
  ])('refuses %j, which a browser could read as another site', (next) => {
    const safe = safeNext(next);
    // Whatever is kept must resolve to this origin in a browser's URL parser.
    expect(new URL(safe, 'http://pool.example').origin).toBe('http://pool.example');
    expect(safe.startsWith('//')).toBe(false);
    if (next !== '/%09/evil.example' && next !== '/%5Cevil.example') expect(safe).toBe('/hub/home');
  });

  it('keeps percent-encoded bytes encoded, so a browser cannot decode them into a host', () => {
    expect(safeNext('/%09/evil.example')).toBe('/%09/evil.example');
    expect(new URL(safeNext('/%2F%2Fevil.example'), 'http://pool.example').host).toBe('pool.example');
  });
});

function app(secret: string): Hono<HubEnv> {
  const hono = new Hono<HubEnv>();
  hono.get('/form', (c) => c.text(csrfInput(c, secret)));
  hono.post('/form', async (c) => c.json({ origin: originProblem(c) ?? null, csrf: await csrfValid(c, secret), from: clientAddress(c, secret) }));
  return hono;
}

describe('form safety', () => {
  const secret = 'test-secret';
  const hono = app(secret);

  it('refuses an Origin that differs in scheme, host or port, and says when it is missing', async () => {
    const post = async (origin?: string) => {
      const headers: Record<string, string> = { host: 'pool.example:8000' };
      if (origin !== undefined) headers.origin = origin;
      return ((await (await hono.request('/form', { method: 'POST', headers })).json()) as { origin: string | null }).origin;
    };
    expect(await post('http://pool.example:8000')).toBeNull();
    expect(await post('http://POOL.example:8000')).toBeNull();
    expect(await post('https://pool.example:8000')).toMatch(/not this site/);
    expect(await post('http://pool.example:8001')).toMatch(/not this site/);
    expect(await post('http://alice.pool.example:8000')).toMatch(/not this site/);
    expect(await post('null')).toMatch(/not this site/);
    expect(await post()).toMatch(/Origin header is missing/);
  });

  it('accepts the CSRF token only with the cookie it was made for', async () => {
    const page = await hono.request('/form');
    const cookie = (page.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    const token = /value="([^"]+)"/.exec(await page.text())?.[1] ?? '';
    const post = async (headers: Record<string, string>, body: string) =>
      ((await (await hono.request('/form', { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers }, body })).json()) as { csrf: boolean }).csrf;
    expect(await post({ cookie }, `_xsrf=${token}`)).toBe(true);
    expect(await post({ cookie }, '_xsrf=forged')).toBe(false);
    expect(await post({ cookie }, '')).toBe(false);
    expect(await post({}, `_xsrf=${token}`)).toBe(false);
    expect(await post({ cookie: 'dspool-csrf=other' }, `_xsrf=${token}`)).toBe(false);
  });

  it('believes a client address only when the gateway signed it', async () => {
    const from = async (value: string) =>
      ((await (await hono.request('/form', { method: 'POST', headers: { 'x-dspool-client': value } })).json()) as { from: string }).from;
    expect(await from(signClientAddress(secret, '203.0.113.9'))).toBe('203.0.113.9');
    expect(await from(signClientAddress('another-secret', '203.0.113.9'))).toBe('unknown');
    expect(await from('203.0.113.9 forged')).toBe('unknown');
  });
});
