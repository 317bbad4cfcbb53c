import { describe, expect, it } from 'vitest';
import { checkRequestedScopes, ownerScopes, SCOPES, tokenScopes } from './scopes.js';

const alice = { name: 'alice', admin: false };
const root = { name: 'root', admin: true };

describe('scopes', () => {
  it('gives a user their own resources only, and an admin everything', () => {
    const mine = ownerScopes(alice);
    expect(mine.allows('servers', 'alice')).toBe(true);
    expect(mine.allows('access:servers', 'alice')).toBe(true);
    expect(mine.allows('servers', 'bob')).toBe(false);
    expect(mine.allows('admin:users', 'alice')).toBe(false);
    expect(mine.allows('read:instances')).toBe(false);
    expect(mine.toStrings()).toContain('access:servers!user=alice');
    const all = ownerScopes(root);
    for (const scope of Object.keys(SCOPES) as (keyof typeof SCOPES)[]) expect(all.allows(scope, 'anyone')).toBe(true);
  });

  it('expands a scope to what it implies, with the same filter', () => {
    const scopes = tokenScopes(root, ['servers!user=bob']);
    expect(scopes.allows('delete:servers', 'bob')).toBe(true);
    expect(scopes.allows('read:servers', 'bob')).toBe(true);
    expect(scopes.allows('servers', 'carol')).toBe(false);
    expect(scopes.allows('access:servers', 'bob')).toBe(false);
  });

  it('reads the server filter and JupyterHub 4\'s bare filters as the owner\'s', () => {
    expect(tokenScopes(alice, ['access:servers!server=alice/']).usersFor('access:servers')).toEqual(['alice']);
    expect(tokenScopes(alice, ['access:servers!user']).allows('access:servers', 'alice')).toBe(true);
    expect(tokenScopes(alice, ['read:users!server']).holds('read:users')).toBe(false);
  });

  it('never gives a token more than its owner: unfiltered narrows to the owner, foreign filters vanish', () => {
    const scopes = tokenScopes(alice, ['servers', 'admin:users', 'access:servers!user=bob']);
    expect(scopes.allows('servers', 'alice')).toBe(true);
    expect(scopes.allows('servers', 'bob')).toBe(false);
    expect(scopes.holds('admin:users')).toBe(false);
    expect(scopes.holds('access:servers')).toBe(false);
    expect(tokenScopes(alice, ['inherit']).covers(ownerScopes(alice))).toBe(true);
    expect(tokenScopes(alice, ['self']).covers(ownerScopes(alice))).toBe(true);
    expect(tokenScopes(root, ['self']).allows('servers', 'bob')).toBe(false);
  });

  it('names unknown scopes, bad filters and scopes the owner does not hold', () => {
    const problems = checkRequestedScopes(alice, ['read:users', 'nope', 'servers!group=x', 'servers!user=Bad', 'read:users!server=alice/', 'admin:users', 'servers!user=bob', 'inherit']);
    expect(problems.unknown.map((u) => u.scope)).toEqual(['nope', 'servers!group=x', 'servers!user=Bad', 'read:users!server=alice/']);
    expect(problems.notHeld).toEqual(['admin:users', 'servers!user=bob']);
  });
});
