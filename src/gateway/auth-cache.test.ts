import { describe, expect, it } from 'vitest';
import { AuthCache } from './auth-cache.js';

const alice = { user: 'alice', admin: false };
const bob = { user: 'bob', admin: false };

describe('AuthCache', () => {
  it('forgets a valid credential after the positive TTL and an invalid one after the shorter negative TTL', () => {
    const cache = new AuthCache({ positiveTtlMs: 60_000, negativeTtlMs: 5_000, maxEntries: 10 });
    cache.set('token', 'good', alice, cache.generation, 0);
    cache.set('token', 'bad', null, cache.generation, 0);
    expect(cache.get('token', 'good', 4_999)).toEqual(alice);
    expect(cache.get('token', 'bad', 4_999)).toBeNull();
    expect(cache.get('token', 'bad', 5_000)).toBeUndefined();
    expect(cache.get('token', 'good', 59_999)).toEqual(alice);
    expect(cache.get('token', 'good', 60_000)).toBeUndefined();
  });

  it('never keeps an identity past its credential\'s own expiry, and does not cache one already expired', () => {
    const cache = new AuthCache({ positiveTtlMs: 60_000, negativeTtlMs: 5_000, maxEntries: 10 });
    cache.set('token', 'short', { ...alice, expiresAtMs: 1_500 }, cache.generation, 1_000);
    expect(cache.get('token', 'short', 1_499)).toEqual({ ...alice, expiresAtMs: 1_500 });
    expect(cache.get('token', 'short', 1_500)).toBeUndefined();
    cache.set('token', 'gone', { ...alice, expiresAtMs: 900 }, cache.generation, 1_000);
    expect(cache.size).toBe(0);
    cache.set('token', 'long', { ...alice, expiresAtMs: 10_000_000 }, cache.generation, 0);
    expect(cache.get('token', 'long', 60_000)).toBeUndefined();
  });

  it('keeps cookies and tokens apart', () => {
    const cache = new AuthCache({ positiveTtlMs: 1_000, negativeTtlMs: 1_000, maxEntries: 10 });
    cache.set('cookie', 'same', alice, cache.generation);
    expect(cache.get('token', 'same')).toBeUndefined();
  });

  it('drops the oldest entries when full', () => {
    const cache = new AuthCache({ positiveTtlMs: 1_000, negativeTtlMs: 1_000, maxEntries: 3 });
    for (const value of ['a', 'b', 'c', 'd']) cache.set('token', value, alice, cache.generation);
    expect(cache.size).toBe(3);
    expect(cache.get('token', 'a')).toBeUndefined();
    expect(cache.get('token', 'd')).toEqual(alice);
  });

  it('revokes one user\'s entries or all of them', () => {
    const cache = new AuthCache({ positiveTtlMs: 1_000, negativeTtlMs: 1_000, maxEntries: 10 });
    cache.set('token', 'a', alice, cache.generation);
    cache.set('cookie', 'a', alice, cache.generation);
    cache.set('token', 'b', bob, cache.generation);
    cache.revoke('alice');
    expect(cache.get('token', 'a')).toBeUndefined();
    expect(cache.get('cookie', 'a')).toBeUndefined();
    expect(cache.get('token', 'b')).toEqual(bob);
    cache.revoke();
    expect(cache.size).toBe(0);
  });

  it('does not cache an answer to a lookup that started before a revoke', () => {
    const cache = new AuthCache({ positiveTtlMs: 1_000, negativeTtlMs: 1_000, maxEntries: 10 });
    const started = cache.generation;
    cache.revoke('alice');
    cache.set('token', 'a', alice, started);
    expect(cache.get('token', 'a')).toBeUndefined();
  });
});
