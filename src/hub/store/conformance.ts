// The behaviour every Store implementation must show; each store's test file runs this suite against it.
import { describe, expect, it } from 'vitest';
import { SshKeyExistsError, UserExistsError, UserNotFoundError } from './errors.js';
import type { SessionRecord, Store } from './types.js';

/**
 * Registers the shared store conformance suite.
 *
 * @example
 * describeStoreConformance('sqlite', () => openSqliteStore({ file: ':memory:', uidBase: 30000 }));
 */
export function describeStoreConformance(name: string, open: () => Promise<Store> | Store, uidBase = 30000): void {
  const session = (over: Partial<SessionRecord> = {}): SessionRecord => ({
    id: 's-1', user: 'alice', name: '', instanceId: null, state: 'pending', url: null, token: 'x'.repeat(32),
    started: new Date().toISOString(), lastActivity: null, stopped: null, reason: null, profile: null, extendedUntil: null,
    stopCause: null, ...over,
  });

  describe(`store conformance: ${name}`, () => {
    it('assigns each new user the next UID, the same as its GID, starting at the base', async () => {
      const store = await open();
      const a = await store.createUser({ name: 'alice', admin: true, passwordHash: 'h' });
      const b = await store.createUser({ name: 'bob', admin: false, passwordHash: null });
      expect([a.uid, a.gid, b.uid, b.gid]).toEqual([uidBase, uidBase, uidBase + 1, uidBase + 1]);
      expect(a.admin).toBe(true);
      expect((await store.listUsers()).map((u) => u.name)).toEqual(['alice', 'bob']);
      await store.close();
    });

    it('never hands a deleted user\'s UID to a new user, not even the newest one\'s', async () => {
      const store = await open();
      await store.createUser({ name: 'alice', admin: false, passwordHash: null });
      const bob = await store.createUser({ name: 'bob', admin: false, passwordHash: null });
      expect(await store.deleteUser('bob')).toBe(true);
      const carol = await store.createUser({ name: 'carol', admin: false, passwordHash: null });
      expect(carol.uid).toBe(bob.uid + 1);
      await store.deleteUser('carol');
      await store.deleteUser('alice');
      const dave = await store.createUser({ name: 'dave', admin: false, passwordHash: null });
      expect(dave.uid).toBe(bob.uid + 2);
      const bobAgain = await store.createUser({ name: 'bob', admin: false, passwordHash: null });
      expect(bobAgain.uid).toBe(bob.uid + 3);
      await store.close();
    });

    it('refuses a second user with the same name', async () => {
      const store = await open();
      await store.createUser({ name: 'alice', admin: false, passwordHash: null });
      await expect(store.createUser({ name: 'alice', admin: true, passwordHash: null })).rejects.toBeInstanceOf(UserExistsError);
      await store.close();
    });

    it('updates and deletes users, removing their tokens and sessions', async () => {
      const store = await open();
      await store.createUser({ name: 'alice', admin: false, passwordHash: null });
      expect((await store.updateUser('alice', { admin: true, disabled: true })).disabled).toBe(true);
      await expect(store.updateUser('nobody', { admin: true })).rejects.toBeInstanceOf(UserNotFoundError);
      await store.createToken({ id: 't1', user: 'alice', hash: 'h1', note: '', scopes: ['self'], created: 'now', expiresAt: null });
      await store.createSession(session());
      expect(await store.deleteUser('alice')).toBe(true);
      expect(await store.findTokenByHash('h1')).toBeUndefined();
      expect(await store.getSession('s-1')).toBeUndefined();
      expect(await store.deleteUser('alice')).toBe(false);
      await store.close();
    });

    it('finds tokens by hash only and deletes them per user', async () => {
      const store = await open();
      await store.createUser({ name: 'alice', admin: false, passwordHash: null });
      await store.createToken({ id: 't1', user: 'alice', hash: 'h1', note: 'ci', scopes: ['self'], created: 'now', expiresAt: null });
      expect((await store.findTokenByHash('h1'))?.note).toBe('ci');
      expect(await store.deleteToken('bob', 't1')).toBe(false);
      expect(await store.deleteToken('alice', 't1')).toBe(true);
      expect(await store.listTokens('alice')).toEqual([]);
      await store.close();
    });

    it('expires browser logins', async () => {
      const store = await open();
      await store.createUser({ name: 'alice', admin: false, passwordHash: null });
      await store.createLogin({ hash: 'l1', user: 'alice', created: '2026-01-01T00:00:00.000Z', expiresAt: '2026-01-02T00:00:00.000Z' });
      expect(await store.findLogin('l1')).toBeDefined();
      expect(await store.deleteExpiredLogins('2026-01-03T00:00:00.000Z')).toBe(1);
      expect(await store.findLogin('l1')).toBeUndefined();
      await store.close();
    });

    it('gives a join token back once, expired or not, and forgets expired ones', async () => {
      const store = await open();
      await store.createJoinToken({ hash: 'j1', created: '2026-01-01T00:00:00.000Z', expiresAt: '2026-01-01T01:00:00.000Z' });
      await store.createJoinToken({ hash: 'j2', created: '2026-01-01T00:00:00.000Z', expiresAt: '2026-01-02T00:00:00.000Z' });
      expect(await store.takeJoinToken('nope')).toBeUndefined();
      const taken = await Promise.all([store.takeJoinToken('j1'), store.takeJoinToken('j1')]);
      expect(taken.filter(Boolean)).toEqual([{ hash: 'j1', created: '2026-01-01T00:00:00.000Z', expiresAt: '2026-01-01T01:00:00.000Z' }]);
      expect(await store.takeJoinToken('j1')).toBeUndefined();
      await store.createJoinToken({ hash: 'j3', created: '2026-01-01T00:00:00.000Z', expiresAt: '2026-01-01T02:00:00.000Z' });
      expect(await store.deleteExpiredJoinTokens('2026-01-01T12:00:00.000Z')).toBe(1);
      expect(await store.takeJoinToken('j3')).toBeUndefined();
      expect((await store.takeJoinToken('j2'))?.expiresAt).toBe('2026-01-02T00:00:00.000Z');
      await store.close();
    });

    it('tracks sessions: active ones, the latest per user, and patches', async () => {
      const store = await open();
      await store.createUser({ name: 'alice', admin: false, passwordHash: null });
      await store.createSession(session({ id: 's-1', started: '2026-01-01T00:00:00.000Z', state: 'stopped' }));
      await store.createSession(session({ id: 's-2', started: '2026-01-02T00:00:00.000Z' }));
      expect((await store.latestSession('alice', ''))?.id).toBe('s-2');
      expect((await store.listActiveSessions()).map((s) => s.id)).toEqual(['s-2']);
      const updated = await store.updateSession('s-2', { state: 'running', url: 'http://127.0.0.1:1', instanceId: 'i-1' });
      expect([updated.state, updated.url, updated.instanceId]).toEqual(['running', 'http://127.0.0.1:1', 'i-1']);
      await store.close();
    });

    it('keeps a session\'s profile, extension and stop cause (the idle culler\'s state across hub restarts)', async () => {
      const store = await open();
      await store.createUser({ name: 'alice', admin: false, passwordHash: null });
      await store.createSession(session({ id: 's-1', profile: 'gpu' }));
      expect(await store.getSession('s-1')).toMatchObject({ profile: 'gpu', extendedUntil: null, stopCause: null });
      await store.updateSession('s-1', { extendedUntil: '2026-01-01T01:00:00.000Z' });
      const stopped = await store.updateSession('s-1', { state: 'stopping', stopCause: 'idle' });
      expect(stopped).toMatchObject({ profile: 'gpu', extendedUntil: '2026-01-01T01:00:00.000Z', stopCause: 'idle' });
      expect((await store.listActiveSessions())[0]).toMatchObject({ id: 's-1', profile: 'gpu', extendedUntil: '2026-01-01T01:00:00.000Z' });
      expect(await store.updateSession('s-1', { extendedUntil: null })).toMatchObject({ extendedUntil: null, stopCause: 'idle' });
      await store.close();
    });

    it('upserts instances and keeps events in order', async () => {
      const store = await open();
      const base = { joinTokenHash: 'j', created: 'a', protected: false, draining: false, drainDeadline: null };
      await store.putInstance({ ...base, id: 'i-1', state: 'starting', address: null, details: { pid: 1 } });
      await store.putInstance({ ...base, id: 'i-1', state: 'draining', address: '127.0.0.1', details: { pid: 2 }, protected: true, draining: true, drainDeadline: '2026-01-01T00:00:00.000Z' });
      expect(await store.getInstance('i-1')).toMatchObject({
        state: 'draining', address: '127.0.0.1', details: { pid: 2 }, protected: true, draining: true, drainDeadline: '2026-01-01T00:00:00.000Z',
      });
      await store.deleteInstance('i-1');
      expect(await store.listInstances()).toEqual([]);
      const first = await store.addEvent({ time: 't', kind: 'k', user: null, instanceId: null, message: 'one', data: {} });
      await store.addEvent({ time: 't', kind: 'k', user: null, instanceId: null, message: 'two', data: { n: 2 } });
      const events = await store.listEvents({ limit: 10 });
      expect(events.map((e) => e.message)).toEqual(['two', 'one']);
      expect((await store.listEvents({ limit: 10, afterId: first.id })).map((e) => e.message)).toEqual(['two']);
      await store.close();
    });

    it('keeps each user\'s SSH keys, refuses a duplicate and forgets them with the user', async () => {
      const store = await open();
      await store.createUser({ name: 'alice', admin: false, passwordHash: null });
      const key = { id: 'k1', user: 'alice', algo: 'ssh-ed25519', data: 'AAAA', comment: 'laptop', fingerprint: 'SHA256:x', created: 'now' };
      await store.addSshKey(key);
      await expect(store.addSshKey({ ...key, id: 'k2' })).rejects.toBeInstanceOf(SshKeyExistsError);
      expect(await store.hasSshKey('alice', 'ssh-ed25519', 'AAAA')).toBe(true);
      expect(await store.hasSshKey('alice', 'ssh-rsa', 'AAAA')).toBe(false);
      expect((await store.listSshKeys('alice')).map((k) => k.comment)).toEqual(['laptop']);
      expect(await store.deleteSshKey('bob', 'k1')).toBe(false);
      await store.deleteUser('alice');
      expect(await store.hasSshKey('alice', 'ssh-ed25519', 'AAAA')).toBe(false);
      await store.close();
    });

    it('keeps settings as JSON and overwrites them', async () => {
      const store = await open();
      expect(await store.getSetting('pool.size')).toBeUndefined();
      await store.putSetting('pool.size', { desired: 3, configured: 2 });
      await store.putSetting('pool.size', { desired: 1, configured: 2 });
      expect(await store.getSetting('pool.size')).toEqual({ desired: 1, configured: 2 });
      await store.close();
    });

    it('can be closed twice', async () => {
      const store = await open();
      await store.close();
      await store.close();
    });
  });
}
