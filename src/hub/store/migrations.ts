// Ordered schema migrations for the SQLite store; `user_version` records how many have run.
// Migration 6 keeps the last UID handed out in `counters` (seeded from the users there are), so a deleted user's
// UID, which still owns their share folder, is never given to anyone else.
// Migration 7 keeps the idle culler's state of a session across hub restarts (its profile, an extension) and who
// stopped it (so an editor reconnecting on its own does not start a server the pool stopped for no work).
// Migration 8 keeps unused join tokens (their hashes), so a join command outlives a hub restart.

export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE users (
    name TEXT PRIMARY KEY,
    admin INTEGER NOT NULL DEFAULT 0,
    uid INTEGER NOT NULL UNIQUE,
    gid INTEGER NOT NULL,
    password_hash TEXT,
    disabled INTEGER NOT NULL DEFAULT 0,
    created TEXT NOT NULL,
    last_activity TEXT
  );
  CREATE TABLE tokens (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    hash TEXT NOT NULL UNIQUE,
    note TEXT NOT NULL DEFAULT '',
    scopes TEXT NOT NULL,
    created TEXT NOT NULL,
    expires_at TEXT,
    last_activity TEXT
  );
  CREATE INDEX tokens_user ON tokens(user);
  CREATE TABLE logins (
    hash TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    created TEXT NOT NULL,
    expires_at TEXT NOT NULL
  );
  CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    address TEXT,
    join_token_hash TEXT NOT NULL,
    details TEXT NOT NULL,
    created TEXT NOT NULL
  );
  CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    name TEXT NOT NULL DEFAULT '',
    instance_id TEXT,
    state TEXT NOT NULL,
    url TEXT,
    token TEXT NOT NULL,
    started TEXT NOT NULL,
    last_activity TEXT,
    stopped TEXT,
    reason TEXT
  );
  CREATE INDEX sessions_user ON sessions(user, name, started);
  CREATE INDEX sessions_state ON sessions(state);
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    time TEXT NOT NULL,
    kind TEXT NOT NULL,
    user TEXT,
    instance_id TEXT,
    message TEXT NOT NULL,
    data TEXT NOT NULL
  );
  `,
  `
  CREATE TABLE ssh_keys (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
    algo TEXT NOT NULL,
    data TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    fingerprint TEXT NOT NULL,
    created TEXT NOT NULL,
    UNIQUE (user, algo, data)
  );
  CREATE INDEX ssh_keys_user ON ssh_keys(user);
  `,
  `
  ALTER TABLE instances ADD COLUMN protected INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE instances ADD COLUMN drain_deadline TEXT;
  `,
  `
  CREATE TABLE settings (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
  );
  `,
  `
  ALTER TABLE instances ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;
  UPDATE instances SET draining = 1 WHERE state = 'draining' OR drain_deadline IS NOT NULL;
  `,
  `
  CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
  );
  INSERT INTO counters (name, value) SELECT 'last_uid', uid FROM users ORDER BY uid DESC LIMIT 1;
  `,
  `
  ALTER TABLE sessions ADD COLUMN profile TEXT;
  ALTER TABLE sessions ADD COLUMN extended_until TEXT;
  ALTER TABLE sessions ADD COLUMN stop_cause TEXT;
  `,
  `
  CREATE TABLE join_tokens (
    hash TEXT PRIMARY KEY,
    created TEXT NOT NULL,
    expires_at TEXT NOT NULL
  );
  `,
];
