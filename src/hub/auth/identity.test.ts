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
    expect(await identities.resolveCookie(cookie ?? '')).toEqual({ user: 'alice', admin: false });
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
    expect(await identities.resolveToken(token)).toEqual({ user: 'alice', admin: false });
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
    expect(await identities.resolveToken('admin-secret-token')).toEqual({ user: SERVICE_IDENTITY, admin: true });
  });

  it('ends a login on logout', async () => {
    const { identities } = await setup();
    const cookie = (await identities.login('alice', 'right')) ?? '';
    expect(await identities.logout(cookie)).toBe('alice');
    expect(await identities.resolveCookie(cookie)).toBeNull();
  });
});
