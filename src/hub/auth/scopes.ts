// JupyterHub-style scopes: what a credential may do, expanded to the names JupyterHub's clients check
// (e.g. `access:servers!user=alice`, which HubAuth-protected servers require).

const USER_SCOPES = [
  'read:users', 'read:users:name', 'read:users:activity', 'users:activity', 'read:servers', 'servers', 'delete:servers',
  'access:servers', 'read:tokens', 'tokens',
] as const;

const ADMIN_SCOPES = [
  'admin:users', 'admin:servers', 'admin:instances', 'admin:events', 'list:users', 'read:users', 'read:users:name',
  'read:users:activity', 'users:activity', 'read:servers', 'servers', 'delete:servers', 'access:servers', 'read:tokens',
  'tokens', 'delete:users',
] as const;

/**
 * The expanded scopes of a credential: a token's own list, with `inherit` (the default) meaning everything its
 * owner may do — for a user, their own resources (`…!user=<name>`); for an admin, everything.
 *
 * @example
 * expandScopes({ name: 'alice', admin: false }, ['inherit']); // ['access:servers!user=alice', …]
 */
export function expandScopes(owner: { name: string; admin: boolean }, tokenScopes: readonly string[]): string[] {
  const owned = owner.admin ? [...ADMIN_SCOPES] : USER_SCOPES.map((scope) => `${scope}!user=${owner.name}`);
  const granted = tokenScopes.includes('inherit') ? owned : tokenScopes.filter((s) => owned.includes(s) || owned.includes(`${s}!user=${owner.name}`));
  return [...new Set(granted.map((s) => (owner.admin || s.includes('!') ? s : `${s}!user=${owner.name}`)))].sort();
}
