import { describe, expect, it } from 'vitest';
import { openSqliteStore } from '../store/sqlite.js';
import { hashPassword } from './credentials.js';
import { IdentityService, SERVICE_IDENTITY } from './identity.js';

async function setup() {
  const store = openSqliteStore({ file: ':memory:' });
  await store.createUser({ name: 'alice', admin: false, passwordHash: await hashPassword('right') });
  await store.createUser({ name: 'root', admin: true, passwordHash: null });
  const identities = new IdentityService({ store, adminToken: 'admin-secret-token', cookieMaxAgeMs: 60_000 });
  return { store, identities };
}

describe('IdentityService', () => {
  it('logs in with the right password and resolves the cookie it returns', async () => {
    const { identities } = await setup();
    const cookie = await identities.login('alice', 'right');
    expect(cookie).toBeTruthy();
    expect(await identities.resolveCookie(cookie ?? '')).toMatchObject({ user: 'alice', admin: false, servers: ['alice'] });
  });

  it('refuses a wrong password, an unknown user and a password-less user alike', async () => {
    const { identities } = await setup();
    expect(await identities.login('alice', 'wrong')).toBeNull();
    expect(await identities.login('nobody', 'right')).toBeNull();
    expect(await identities.login('root', '')).toBeNull();
  });

  it('stores only a hash of each token and resolves it to its owner', async () => {
    const { identities, store } = await setup();
    const { token, record } = await identities.issueToken('alice', { note: 'ci' });
    expect(token).toMatch(/^dsp_/);
    expect(record.hash).not.toContain(token);
    expect((await store.listTokens('alice'))[0]?.hash).toBe(record.hash);
    expect(await identities.resolveToken(token)).toEqual({ user: 'alice', admin: false, servers: ['alice'] });
    expect(await identities.resolveToken(`${token}x`)).toBeNull();
  });

  it('stops resolving a token once it expired or its user is disabled', async () => {
    const { identities, store } = await setup();
    const { token, record } = await identities.issueToken('alice', { expiresInSeconds: 3600 });
    await store.deleteToken('alice', record.id);
    await store.createToken({ ...record, expiresAt: new Date(Date.now() - 1000).toISOString() });
    expect(await identities.resolveToken(token)).toBeNull();
    const fresh = await identities.issueToken('alice');
    await store.updateUser('alice', { disabled: true });
    expect(await identities.resolveToken(fresh.token)).toBeNull();
  });

  it('resolves the CLI\'s admin token to the service identity', async () => {
    const { identities } = await setup();
    expect(await identities.resolveToken('admin-secret-token')).toEqual({ user: SERVICE_IDENTITY, admin: true, servers: '*' });
  });

  it('ends a login on logout', async () => {
    const { identities } = await setup();
    const cookie = (await identities.login('alice', 'right')) ?? '';
    expect(await identities.logout(cookie)).toBe('alice');
    expect(await identities.resolveCookie(cookie)).toBeNull();
  });

  it('tells the gateway when a token ends and whose servers it may open', async () => {
    const { identities } = await setup();
    const { token, record } = await identities.issueToken('alice', { expiresInSeconds: 60, scopes: ['read:users'] });
    const who = await identities.resolveToken(token);
    expect(who).toEqual({ user: 'alice', admin: false, servers: [], expiresAtMs: new Date(record.expiresAt ?? '').getTime() });
  });

  it('refuses unknown scopes and scopes the owner does not hold, naming them', async () => {
    const { identities } = await setup();
    await expect(identities.issueToken('alice', { scopes: ['read:users', 'fly:planes', 'servers!group=x'] })).rejects.toMatchObject({
      code: 'bad_request', field: 'scopes', message: expect.stringMatching(/fly:planes.*servers!group=x/),
    });
    await expect(identities.issueToken('alice', { scopes: ['admin:users'] })).rejects.toMatchObject({ field: 'scopes', message: expect.stringContaining('admin:users') });
    await expect(identities.issueToken('alice', { scopes: ['servers!user=root'] })).rejects.toMatchObject({ field: 'scopes' });
  });

  it('never lets a narrow token mint a wider one: its inherit becomes the narrow scopes, anything more is 403', async () => {
    const { identities } = await setup();
    const narrow = await identities.authenticateToken((await identities.issueToken('alice', { scopes: ['tokens', 'read:servers'] })).token);
    const requester = narrow?.scopes;
    await expect(identities.issueToken('alice', { scopes: ['servers'], requester })).rejects.toMatchObject({ code: 'forbidden' });
    const minted = await identities.issueToken('alice', { requester });
    expect(minted.record.scopes).not.toContain('inherit');
    const child = await identities.authenticateToken(minted.token);
    expect(child?.scopes.allows('servers', 'alice')).toBe(false);
    expect(child?.scopes.allows('read:servers', 'alice')).toBe(true);
    expect(child?.full).toBe(false);
  });

  it('limits a token to what its owner holds now: an admin token loses its admin scopes with the admin flag', async () => {
    const { identities, store } = await setup();
    const { token } = await identities.issueToken('root', { scopes: ['admin:users', 'access:servers'] });
    expect((await identities.authenticateToken(token))?.scopes.allows('admin:users', 'alice')).toBe(true);
    expect(await identities.resolveToken(token)).toMatchObject({ servers: '*' });
    await store.updateUser('root', { admin: false });
    const after = await identities.authenticateToken(token);
    expect(after?.scopes.allows('admin:users', 'alice')).toBe(false);
    expect(after?.identity.servers).toEqual(['root']);
  });
});
