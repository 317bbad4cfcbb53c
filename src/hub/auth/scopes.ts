// JupyterHub's scope model: what a credential may do. A scope is a name (`servers`), optionally narrowed by a
// filter (`servers!user=alice`, `access:servers!server=alice/`); a scope implies its subscopes with the same
// filter (`servers` ⊃ `read:servers`, `delete:servers`). A user holds their own resources (`…!user=<name>`), an
// admin everything; a token holds what it was issued with, intersected with what its owner holds *now*.
import { usernameProblem } from '../../lib/names.js';

/** Each scope this hub knows, with what it allows and the scopes it implies. */
export const SCOPES = {
  'admin:users': { description: 'Create, change and delete users (and everything `users` allows).', implies: ['users', 'delete:users'] },
  users: { description: 'Read users and manage their SSH keys.', implies: ['read:users', 'list:users', 'users:activity', 'users:keys'] },
  'delete:users': { description: 'Delete users.', implies: [] },
  'list:users': { description: 'List users (GET /users shows the users this covers).', implies: ['read:users:name'] },
  'read:users': { description: 'Read user models (and their SSH public keys).', implies: ['read:users:name', 'read:users:activity', 'read:users:keys'] },
  'read:users:name': { description: 'Read user names.', implies: [] },
  'read:users:activity': { description: 'Read users\' last activity.', implies: [] },
  'users:activity': { description: 'Update users\' activity.', implies: ['read:users:activity'] },
  'users:keys': { description: 'Pool scope: register and remove SSH public keys.', implies: ['read:users:keys'] },
  'read:users:keys': { description: 'Pool scope: read SSH public keys.', implies: [] },
  'admin:servers': { description: 'Everything about servers.', implies: ['servers'] },
  servers: { description: 'Start and stop servers (and read them).', implies: ['read:servers', 'delete:servers'] },
  'read:servers': { description: 'Read servers\' state and start progress.', implies: ['read:users:name'] },
  'delete:servers': { description: 'Stop servers.', implies: [] },
  'access:servers': { description: 'Open servers at /user/<name>/ (Jupyter, through the gateway).', implies: [] },
  tokens: { description: 'Create and revoke API tokens.', implies: ['read:tokens'] },
  'read:tokens': { description: 'List API tokens (never their secrets).', implies: [] },
  'admin:instances': { description: 'Pool scope: drain, protect and scale instances.', implies: ['read:instances'] },
  'read:instances': { description: 'Pool scope: read instances, the pool\'s size and the wait queue.', implies: [] },
  'admin:events': { description: 'Pool scope: read the audit trail.', implies: [] },
  'read:metrics': { description: 'Read /hub/metrics (Prometheus).', implies: [] },
} as const satisfies Record<string, { description: string; implies: readonly string[] }>;

/** A scope name this hub knows. */
export type ScopeName = keyof typeof SCOPES;

/** Scopes whose resource is a server: they also take the `!server=<user>/` filter. */
const SERVER_SCOPES: ReadonlySet<string> = new Set(['admin:servers', 'servers', 'read:servers', 'delete:servers', 'access:servers']);

/** What a normal user holds on their own account (JupyterHub's `user` role, plus the pool's keys). */
const USER_ROLE: readonly ScopeName[] = ['users', 'servers', 'access:servers', 'tokens'];

/** Token scopes that stand for a set: everything the owner holds, or the owner's own resources. */
const SPECIAL = new Set(['inherit', 'all', 'self']);

/** Most scopes one token may be issued with. */
export const MAX_TOKEN_SCOPES = 64;
/** Longest scope string accepted. */
export const MAX_SCOPE_LENGTH = 128;

const isScope = (name: string): name is ScopeName => Object.hasOwn(SCOPES, name);

/** `true` = unfiltered; otherwise the filters held (`user=alice`, `server=alice/`). */
type Grant = true | Set<string>;

/**
 * An expanded, immutable set of scopes: the answer to "may this credential do X to user Y".
 *
 * @example
 * const scopes = ownerScopes({ name: 'alice', admin: false });
 * scopes.allows('servers', 'alice'); // true
 * scopes.allows('servers', 'bob'); // false
 */
export class Scopes {
  readonly #grants: Map<ScopeName, Grant>;

  /** @internal Build with {@link ownerScopes} or {@link tokenScopes}. */
  constructor(grants: Map<ScopeName, Grant>) {
    this.#grants = grants;
  }

  /** Whether `scope` is held for `user`'s resources (or, without `user`, unfiltered). */
  allows(scope: ScopeName, user?: string): boolean {
    const grant = this.#grants.get(scope);
    if (grant === undefined) return false;
    if (grant === true) return true;
    if (user === undefined) return false;
    return grant.has(`user=${user}`) || (SERVER_SCOPES.has(scope) && grant.has(`server=${user}/`));
  }

  /** Whether `scope` is held at all, with any filter. */
  holds(scope: ScopeName): boolean {
    return this.#grants.has(scope);
  }

  /** The users whose resources `scope` covers: `'*'` for everyone's. */
  usersFor(scope: ScopeName): '*' | string[] {
    const grant = this.#grants.get(scope);
    if (grant === undefined) return [];
    if (grant === true) return '*';
    const users = new Set<string>();
    for (const filter of grant) users.add(filter.startsWith('user=') ? filter.slice(5) : filter.slice(7, -1));
    return [...users].sort();
  }

  /** Whether every scope of `other` is held here too (then a credential with these lacks nothing of `other`). */
  covers(other: Scopes): boolean {
    for (const [scope, grant] of other.#grants) {
      const mine = this.#grants.get(scope);
      if (mine === undefined) return false;
      if (mine === true) continue;
      if (grant === true) return false;
      for (const filter of grant) {
        if (!mine.has(filter) && !(filter.startsWith('server=') && mine.has(`user=${filter.slice(7, -1)}`))) return false;
      }
    }
    return true;
  }

  /** What is held both here and in `other` (a token's scopes limited to what its owner holds). */
  intersect(other: Scopes): Scopes {
    const out = new Map<ScopeName, Grant>();
    for (const [scope, grant] of this.#grants) {
      const theirs = other.#grants.get(scope);
      if (theirs === undefined) continue;
      if (theirs === true) out.set(scope, grant === true ? true : new Set(grant));
      else if (grant === true) out.set(scope, new Set(theirs));
      else {
        const kept = new Set([...grant].filter((f) => theirs.has(f) || (f.startsWith('server=') && theirs.has(`user=${f.slice(7, -1)}`))));
        if (kept.size > 0) out.set(scope, kept);
      }
    }
    return new Scopes(out);
  }

  /** JupyterHub's string form, sorted: `read:users!user=alice`, `admin:users`. */
  toStrings(): string[] {
    const out: string[] = [];
    for (const [scope, grant] of this.#grants) {
      if (grant === true) out.push(scope);
      else for (const filter of grant) out.push(`${scope}!${filter}`);
    }
    return out.sort();
  }
}

/** One parsed scope string: the name and its filter (`undefined` = unfiltered). */
interface ParsedScope {
  readonly scope: ScopeName;
  readonly filter: string | undefined;
}

/**
 * Parses one scope string for a token owned by `owner`: `name`, `name!user=<u>`, `name!server=<u>/`, and
 * JupyterHub 4's bare `name!user` / `name!server` (the owner's). Returns a problem text for anything else.
 */
function parseScope(text: string, owner: string): ParsedScope | string {
  const bang = text.indexOf('!');
  const name = bang === -1 ? text : text.slice(0, bang);
  if (!isScope(name)) return 'no such scope';
  if (bang === -1) return { scope: name, filter: undefined };
  const filterText = text.slice(bang + 1);
  const eq = filterText.indexOf('=');
  const key = eq === -1 ? filterText : filterText.slice(0, eq);
  const value = eq === -1 ? undefined : filterText.slice(eq + 1);
  if (key === 'user') {
    const user = value ?? owner;
    const problem = usernameProblem(user);
    if (problem) return `invalid user filter: ${problem}`;
    return { scope: name, filter: `user=${user}` };
  }
  if (key === 'server') {
    if (!SERVER_SCOPES.has(name)) return 'the server filter applies only to server scopes';
    const server = value ?? `${owner}/`;
    const slash = server.indexOf('/');
    const user = slash === -1 ? server : server.slice(0, slash);
    if (slash !== -1 && slash !== server.length - 1) return 'named servers do not exist here; write server=<user>/';
    const problem = usernameProblem(user);
    if (problem) return `invalid server filter: ${problem}`;
    return { scope: name, filter: `server=${user}/` };
  }
  return `unknown filter "${key}" (use !user=<name> or !server=<name>/)`;
}

/** Adds `scope` with `filter`, and everything it implies, to `grants`. */
function grant(grants: Map<ScopeName, Grant>, scope: ScopeName, filter: string | undefined): void {
  const current = grants.get(scope);
  if (current !== true) {
    if (filter === undefined) grants.set(scope, true);
    else {
      // A server filter on a scope about users (read:servers ⊃ read:users:name) narrows to that user.
      const own = SERVER_SCOPES.has(scope) || !filter.startsWith('server=') ? filter : `user=${filter.slice(7, -1)}`;
      if (current === undefined) grants.set(scope, new Set([own]));
      else current.add(own);
    }
  }
  for (const implied of SCOPES[scope].implies) grant(grants, implied, filter);
}

/**
 * What an account holds: an admin every scope, a user `users`, `servers`, `access:servers` and `tokens` on their
 * own name (with everything those imply).
 *
 * @example
 * ownerScopes({ name: 'alice', admin: false }).toStrings(); // ['access:servers!user=alice', …]
 */
export function ownerScopes(owner: { readonly name: string; readonly admin: boolean }): Scopes {
  const grants = new Map<ScopeName, Grant>();
  if (owner.admin) for (const scope of Object.keys(SCOPES) as ScopeName[]) grant(grants, scope, undefined);
  else for (const scope of USER_ROLE) grant(grants, scope, `user=${owner.name}`);
  return new Scopes(grants);
}

/** The owner's own resources (`self`): the user role on their name, whether or not they are an admin. */
function selfScopes(owner: string): Scopes {
  return ownerScopes({ name: owner, admin: false });
}

/** Problems with the scopes a token is requested with: the strings that are not scopes, and why. */
export interface ScopeProblems {
  /** Strings that are no scope (or carry a bad filter), with the reason. */
  readonly unknown: readonly { readonly scope: string; readonly problem: string }[];
}

/**
 * Expands a token's stored scope list for its owner: `inherit` / `all` = everything the owner holds, `self` = the
 * owner's own resources; anything unknown is ignored here (it was refused when the token was made). The result
 * never holds more than the owner does now.
 *
 * @example
 * tokenScopes({ name: 'mallory', admin: false }, ['read:users!user=mallory']).allows('servers', 'mallory'); // false
 */
export function tokenScopes(owner: { readonly name: string; readonly admin: boolean }, list: readonly string[]): Scopes {
  const held = ownerScopes(owner);
  if (list.includes('inherit') || list.includes('all')) return held;
  const grants = new Map<ScopeName, Grant>();
  for (const text of list) {
    if (text === 'self') {
      for (const scope of USER_ROLE) grant(grants, scope, `user=${owner.name}`);
      continue;
    }
    const parsed = parseScope(text, owner.name);
    if (typeof parsed !== 'string') grant(grants, parsed.scope, parsed.filter);
  }
  return new Scopes(grants).intersect(held);
}

/**
 * Checks the scopes a token is requested with: every string must be a known scope (with a valid filter) or
 * `inherit`, `all`, `self`. Returns the unknown ones (refused with 400), and those the owner does not hold
 * (JupyterHub refuses them too: "Not assigning requested scopes … not held by …").
 *
 * @example
 * checkRequestedScopes({ name: 'alice', admin: false }, ['admin:users', 'nope']);
 * // { unknown: [{ scope: 'nope', problem: 'no such scope' }], notHeld: ['admin:users'] }
 */
export function checkRequestedScopes(
  owner: { readonly name: string; readonly admin: boolean },
  list: readonly string[],
  holder: Scopes = ownerScopes(owner),
): ScopeProblems & { readonly notHeld: readonly string[] } {
  const unknown: { scope: string; problem: string }[] = [];
  const notHeld: string[] = [];
  for (const text of list) {
    if (SPECIAL.has(text)) {
      const set = text === 'self' ? selfScopes(owner.name) : ownerScopes(owner);
      if (!holder.covers(set)) notHeld.push(text);
      continue;
    }
    const parsed = parseScope(text, owner.name);
    if (typeof parsed === 'string') {
      unknown.push({ scope: text, problem: parsed });
      continue;
    }
    const user = parsed.filter === undefined ? undefined : parsed.filter.startsWith('user=') ? parsed.filter.slice(5) : parsed.filter.slice(7, -1);
    // Unfiltered is fine when some of it is held: it narrows to the holder's part (alice's `servers` = her own).
    const ok = user === undefined ? holder.holds(parsed.scope) : holder.allows(parsed.scope, user);
    if (!ok) notHeld.push(text);
  }
  return { unknown, notHeld };
}
