// The embedded store: one SQLite file under dataDir (better-sqlite3), WAL mode, migrated on open.
import Database from 'better-sqlite3';
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { SessionNotFoundError, SshKeyExistsError, StoreVersionError, UserExistsError, UserNotFoundError } from './errors.js';
import { MIGRATIONS } from './migrations.js';
import type {
  EventRecord, InstanceRecord, JoinTokenRecord, NewUser, SessionPatch, SessionRecord, Store, TokenRecord, UserPatch, UserRecord,
} from './types.js';

/** Options for `openSqliteStore`. */
export interface SqliteStoreOptions {
  /** Path of the database file (created with its directory), or `:memory:`. */
  readonly file: string;
  /**
   * First UID/GID handed to users.
   * @default 20000
   */
  readonly uidBase?: number;
}

type Row = Record<string, unknown>;

const str = (v: unknown): string => String(v);
const strOrNull = (v: unknown): string | null => (v === null || v === undefined ? null : String(v));

function toUser(r: Row): UserRecord {
  return {
    name: str(r.name), admin: r.admin === 1, uid: Number(r.uid), gid: Number(r.gid),
    passwordHash: strOrNull(r.password_hash), disabled: r.disabled === 1, created: str(r.created),
    lastActivity: strOrNull(r.last_activity),
  };
}
function toToken(r: Row): TokenRecord {
  return {
    id: str(r.id), user: str(r.user), hash: str(r.hash), note: str(r.note), scopes: JSON.parse(str(r.scopes)) as string[],
    created: str(r.created), expiresAt: strOrNull(r.expires_at), lastActivity: strOrNull(r.last_activity),
  };
}
function toInstance(r: Row): InstanceRecord {
  return {
    id: str(r.id), state: str(r.state), address: strOrNull(r.address), joinTokenHash: str(r.join_token_hash),
    details: JSON.parse(str(r.details)) as Record<string, string | number>, created: str(r.created),
    protected: r.protected === 1, draining: r.draining === 1, drainDeadline: strOrNull(r.drain_deadline),
  };
}
function toSession(r: Row): SessionRecord {
  return {
    id: str(r.id), user: str(r.user), name: str(r.name), instanceId: strOrNull(r.instance_id), state: str(r.state),
    url: strOrNull(r.url), token: str(r.token), started: str(r.started), lastActivity: strOrNull(r.last_activity),
    stopped: strOrNull(r.stopped), reason: strOrNull(r.reason), profile: strOrNull(r.profile), extendedUntil: strOrNull(r.extended_until),
    stopCause: strOrNull(r.stop_cause),
  };
}
function toEvent(r: Row): EventRecord {
  return {
    id: Number(r.id), time: str(r.time), kind: str(r.kind), user: strOrNull(r.user), instanceId: strOrNull(r.instance_id),
    message: str(r.message), data: JSON.parse(str(r.data)) as Record<string, unknown>,
  };
}

const SESSION_COLUMNS: Record<keyof SessionPatch, string> = {
  instanceId: 'instance_id', state: 'state', url: 'url', lastActivity: 'last_activity', stopped: 'stopped', reason: 'reason',
  extendedUntil: 'extended_until', stopCause: 'stop_cause',
};
const USER_COLUMNS: Record<keyof UserPatch, string> = {
  admin: 'admin', passwordHash: 'password_hash', disabled: 'disabled', lastActivity: 'last_activity',
};
const sqlValue = (v: unknown): unknown => (typeof v === 'boolean' ? (v ? 1 : 0) : v);

/**
 * Opens (and migrates) the SQLite store.
 *
 * @example
 * const store = openSqliteStore({ file: 'state/dspool.sqlite' });
 * await store.createUser({ name: 'alice', admin: false, passwordHash: null });
 */
export function openSqliteStore(options: SqliteStoreOptions): Store {
  if (options.file !== ':memory:') {
    mkdirSync(dirname(options.file), { recursive: true, mode: 0o700 });
    // Password and token hashes and servers' secrets live here: owner-only, like every file SQLite adds beside it.
    closeSync(openSync(options.file, 'a', 0o600));
    chmodSync(options.file, 0o600);
  }
  const db = new Database(options.file);
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  const uidBase = options.uidBase ?? 20000;
  let closed: Promise<void> | undefined;

  const q = {
    insertUser: db.prepare(
      `INSERT INTO users (name, admin, uid, gid, password_hash, created)
       VALUES (@name, @admin, @uid, @uid, @passwordHash, @created)`,
    ),
    maxUid: db.prepare('SELECT MAX(uid) AS uid FROM users'),
    lastUid: db.prepare("SELECT value FROM counters WHERE name = 'last_uid'"),
    putLastUid: db.prepare("INSERT INTO counters (name, value) VALUES ('last_uid', ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value"),
    getUser: db.prepare('SELECT * FROM users WHERE name = ?'),
    listUsers: db.prepare('SELECT * FROM users ORDER BY name'),
    deleteUser: db.prepare('DELETE FROM users WHERE name = ?'),
    insertToken: db.prepare(
      `INSERT INTO tokens (id, user, hash, note, scopes, created, expires_at)
       VALUES (@id, @user, @hash, @note, @scopes, @created, @expiresAt)`,
    ),
    tokenByHash: db.prepare('SELECT * FROM tokens WHERE hash = ?'),
    listTokens: db.prepare('SELECT * FROM tokens WHERE user = ? ORDER BY created'),
    deleteToken: db.prepare('DELETE FROM tokens WHERE user = ? AND id = ?'),
    touchToken: db.prepare('UPDATE tokens SET last_activity = ? WHERE id = ?'),
    insertLogin: db.prepare('INSERT INTO logins (hash, user, created, expires_at) VALUES (?, ?, ?, ?)'),
    getLogin: db.prepare('SELECT * FROM logins WHERE hash = ?'),
    deleteLogin: db.prepare('DELETE FROM logins WHERE hash = ?'),
    expireLogins: db.prepare('DELETE FROM logins WHERE expires_at < ?'),
    insertJoinToken: db.prepare('INSERT INTO join_tokens (hash, created, expires_at) VALUES (?, ?, ?)'),
    // One statement: two joins racing for one token cannot both get it.
    takeJoinToken: db.prepare('DELETE FROM join_tokens WHERE hash = ? RETURNING hash, created, expires_at'),
    expireJoinTokens: db.prepare('DELETE FROM join_tokens WHERE expires_at < ?'),
    putInstance: db.prepare(
      `INSERT INTO instances (id, state, address, join_token_hash, details, created, protected, draining, drain_deadline)
       VALUES (@id, @state, @address, @joinTokenHash, @details, @created, @protected, @draining, @drainDeadline)
       ON CONFLICT(id) DO UPDATE SET state = excluded.state, address = excluded.address, details = excluded.details,
         protected = excluded.protected, draining = excluded.draining, drain_deadline = excluded.drain_deadline`,
    ),
    getInstance: db.prepare('SELECT * FROM instances WHERE id = ?'),
    listInstances: db.prepare('SELECT * FROM instances ORDER BY created, id'),
    deleteInstance: db.prepare('DELETE FROM instances WHERE id = ?'),
    insertSession: db.prepare(
      `INSERT INTO sessions (id, user, name, instance_id, state, url, token, started, last_activity, stopped, reason, profile, extended_until, stop_cause)
       VALUES (@id, @user, @name, @instanceId, @state, @url, @token, @started, @lastActivity, @stopped, @reason, @profile, @extendedUntil, @stopCause)`,
    ),
    getSession: db.prepare('SELECT * FROM sessions WHERE id = ?'),
    activeSessions: db.prepare("SELECT * FROM sessions WHERE state NOT IN ('stopped', 'failed') ORDER BY started, id"),
    latestSession: db.prepare('SELECT * FROM sessions WHERE user = ? AND name = ? ORDER BY started DESC, rowid DESC LIMIT 1'),
    insertKey: db.prepare(
      'INSERT INTO ssh_keys (id, user, algo, data, comment, fingerprint, created) VALUES (@id, @user, @algo, @data, @comment, @fingerprint, @created)',
    ),
    listKeys: db.prepare('SELECT * FROM ssh_keys WHERE user = ? ORDER BY created, id'),
    hasKey: db.prepare('SELECT 1 FROM ssh_keys WHERE user = ? AND algo = ? AND data = ?'),
    deleteKey: db.prepare('DELETE FROM ssh_keys WHERE user = ? AND id = ?'),
    getSetting: db.prepare('SELECT value FROM settings WHERE key = ?'),
    putSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
    insertEvent: db.prepare(
      `INSERT INTO events (time, kind, user, instance_id, message, data) VALUES (@time, @kind, @user, @instanceId, @message, @data)`,
    ),
    listEvents: db.prepare('SELECT * FROM events WHERE id > ? ORDER BY id DESC LIMIT ?'),
  };

  const createUser = db.transaction((user: NewUser): UserRecord => {
    if (q.getUser.get(user.name)) throw new UserExistsError(user.name);
    // The counter never goes back: deleting the newest user does not free their UID for the next one.
    const last = (q.lastUid.get() as { value: number } | undefined)?.value ?? uidBase - 1;
    const max = (q.maxUid.get() as { uid: number | null }).uid ?? uidBase - 1;
    const uid = Math.max(uidBase, last + 1, max + 1);
    q.putLastUid.run(uid);
    q.insertUser.run({ name: user.name, admin: user.admin ? 1 : 0, uid, passwordHash: user.passwordHash, created: new Date().toISOString() });
    return toUser(q.getUser.get(user.name) as Row);
  });

  const store: Store = {
    async createUser(user) {
      return createUser(user);
    },
    async getUser(name) {
      const row = q.getUser.get(name) as Row | undefined;
      return row ? toUser(row) : undefined;
    },
    async listUsers() {
      return (q.listUsers.all() as Row[]).map(toUser);
    },
    async updateUser(name, patch) {
      const sets = Object.entries(patch).filter(([, v]) => v !== undefined);
      if (sets.length > 0) {
        const sql = `UPDATE users SET ${sets.map(([k]) => `${USER_COLUMNS[k as keyof UserPatch]} = ?`).join(', ')} WHERE name = ?`;
        db.prepare(sql).run(...sets.map(([, v]) => sqlValue(v)), name);
      }
      const row = q.getUser.get(name) as Row | undefined;
      if (!row) throw new UserNotFoundError(name);
      return toUser(row);
    },
    async deleteUser(name) {
      return q.deleteUser.run(name).changes > 0;
    },
    async createToken(token) {
      q.insertToken.run({ ...token, scopes: JSON.stringify(token.scopes) });
      return { ...token, lastActivity: null };
    },
    async findTokenByHash(hash) {
      const row = q.tokenByHash.get(hash) as Row | undefined;
      return row ? toToken(row) : undefined;
    },
    async listTokens(user) {
      return (q.listTokens.all(user) as Row[]).map(toToken);
    },
    async deleteToken(user, id) {
      return q.deleteToken.run(user, id).changes > 0;
    },
    async touchToken(id, time) {
      q.touchToken.run(time, id);
    },
    async createLogin(login) {
      q.insertLogin.run(login.hash, login.user, login.created, login.expiresAt);
    },
    async findLogin(hash) {
      const row = q.getLogin.get(hash) as Row | undefined;
      return row ? { hash: str(row.hash), user: str(row.user), created: str(row.created), expiresAt: str(row.expires_at) } : undefined;
    },
    async deleteLogin(hash) {
      q.deleteLogin.run(hash);
    },
    async deleteExpiredLogins(now) {
      return q.expireLogins.run(now).changes;
    },
    async createJoinToken(token) {
      q.insertJoinToken.run(token.hash, token.created, token.expiresAt);
    },
    async takeJoinToken(hash) {
      const row = q.takeJoinToken.get(hash) as Row | undefined;
      return row ? ({ hash: str(row.hash), created: str(row.created), expiresAt: str(row.expires_at) } satisfies JoinTokenRecord) : undefined;
    },
    async deleteExpiredJoinTokens(now) {
      return q.expireJoinTokens.run(now).changes;
    },
    async putInstance(instance) {
      q.putInstance.run({ ...instance, details: JSON.stringify(instance.details), protected: instance.protected ? 1 : 0, draining: instance.draining ? 1 : 0 });
    },
    async getInstance(id) {
      const row = q.getInstance.get(id) as Row | undefined;
      return row ? toInstance(row) : undefined;
    },
    async listInstances() {
      return (q.listInstances.all() as Row[]).map(toInstance);
    },
    async deleteInstance(id) {
      q.deleteInstance.run(id);
    },
    async createSession(session) {
      q.insertSession.run({ ...session });
    },
    async getSession(id) {
      const row = q.getSession.get(id) as Row | undefined;
      return row ? toSession(row) : undefined;
    },
    async updateSession(id, patch) {
      const sets = Object.entries(patch).filter(([, v]) => v !== undefined);
      if (sets.length > 0) {
        const sql = `UPDATE sessions SET ${sets.map(([k]) => `${SESSION_COLUMNS[k as keyof SessionPatch]} = ?`).join(', ')} WHERE id = ?`;
        db.prepare(sql).run(...sets.map(([, v]) => sqlValue(v)), id);
      }
      const row = q.getSession.get(id) as Row | undefined;
      if (!row) throw new SessionNotFoundError(id);
      return toSession(row);
    },
    async listActiveSessions() {
      return (q.activeSessions.all() as Row[]).map(toSession);
    },
    async latestSession(user, name) {
      const row = q.latestSession.get(user, name) as Row | undefined;
      return row ? toSession(row) : undefined;
    },
    async addSshKey(key) {
      try {
        q.insertKey.run({ ...key });
      } catch (error) {
        if ((error as { code?: string }).code === 'SQLITE_CONSTRAINT_UNIQUE') throw new SshKeyExistsError(key.user, key.fingerprint);
        throw error;
      }
    },
    async listSshKeys(user) {
      return (q.listKeys.all(user) as Row[]).map((r) => ({
        id: str(r.id), user: str(r.user), algo: str(r.algo), data: str(r.data), comment: str(r.comment),
        fingerprint: str(r.fingerprint), created: str(r.created),
      }));
    },
    async hasSshKey(user, algo, data) {
      return q.hasKey.get(user, algo, data) !== undefined;
    },
    async deleteSshKey(user, id) {
      return q.deleteKey.run(user, id).changes > 0;
    },
    async getSetting(key) {
      const row = q.getSetting.get(key) as Row | undefined;
      return row ? (JSON.parse(str(row.value)) as unknown) : undefined;
    },
    async putSetting(key, value) {
      q.putSetting.run(key, JSON.stringify(value));
    },
    async addEvent(event) {
      const info = q.insertEvent.run({ ...event, data: JSON.stringify(event.data) });
      return { ...event, id: Number(info.lastInsertRowid) };
    },
    async listEvents({ limit, afterId }) {
      return (q.listEvents.all(afterId ?? 0, limit) as Row[]).map(toEvent);
    },
    close() {
      closed ??= Promise.resolve().then(() => {
        db.close();
      });
      return closed;
    },
  };
  return store;
}

function migrate(db: Database.Database): void {
  const version = Number(db.pragma('user_version', { simple: true }));
  if (version > MIGRATIONS.length) throw new StoreVersionError(version, MIGRATIONS.length);
  for (let v = version; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v] ?? '');
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
}
