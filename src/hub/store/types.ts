// The store contract: everything the hub persists, behind one async interface (SQLite now, Postgres for HA).

/** A pool user. `uid`/`gid` are assigned once by the hub and are the same on every instance. */
export interface UserRecord {
  readonly name: string;
  readonly admin: boolean;
  readonly uid: number;
  readonly gid: number;
  /** argon2id hash, or null for a user who signs in with tokens only. */
  readonly passwordHash: string | null;
  readonly disabled: boolean;
  /** ISO-8601. */
  readonly created: string;
  readonly lastActivity: string | null;
}

/** An API token; only its SHA-256 is stored. */
export interface TokenRecord {
  readonly id: string;
  readonly user: string;
  readonly hash: string;
  readonly note: string;
  readonly scopes: readonly string[];
  readonly created: string;
  readonly expiresAt: string | null;
  readonly lastActivity: string | null;
}

/** A browser login (the cookie's SHA-256 is the key). */
export interface LoginRecord {
  readonly hash: string;
  readonly user: string;
  readonly created: string;
  readonly expiresAt: string;
}

/**
 * A join token not used yet (`dspool instances join-command`): one use, until `expiresAt`. Only its SHA-256 is
 * stored, so a join command printed before a hub restart still works after it.
 */
export interface JoinTokenRecord {
  readonly hash: string;
  /** ISO-8601. */
  readonly created: string;
  /** ISO-8601; after it the token is refused. */
  readonly expiresAt: string;
}

/** An instance as the hub tracks it. `state` values are `InstanceState` (see hub/instances). */
export interface InstanceRecord {
  readonly id: string;
  readonly state: string;
  readonly address: string | null;
  readonly joinTokenHash: string;
  readonly details: Readonly<Record<string, string | number>>;
  readonly created: string;
  /** Protected from removal (drain, scale-in); kept across hub restarts. */
  readonly protected: boolean;
  /**
   * Being drained (no new sessions; removed once its sessions end). Kept apart from `state`: an instance whose
   * agent is out of touch is `unreachable` and still draining.
   */
  readonly draining: boolean;
  /** When draining: the deadline (ISO-8601) after which its remaining sessions are stopped; null for none. */
  readonly drainDeadline: string | null;
}

/** A user's server. `state` values are `SessionState` (see hub/sessions). `token` is the server's secret. */
export interface SessionRecord {
  readonly id: string;
  readonly user: string;
  readonly name: string;
  readonly instanceId: string | null;
  readonly state: string;
  readonly url: string | null;
  readonly token: string;
  readonly started: string;
  readonly lastActivity: string | null;
  readonly stopped: string | null;
  /** Why it ended or failed, for people. */
  readonly reason: string | null;
  /** The profile it was started with (null: none named, the default). */
  readonly profile: string | null;
  /** Kept running whatever it does until then (ISO-8601; `dspool extend`), or null. */
  readonly extendedUntil: string | null;
  /**
   * Who stopped it, once it is being stopped (`StopCause` values, see hub/sessions): `request` (the user or an
   * admin), `idle` (the culler), `drain` (a drain deadline), `shutdown` (the pool stopping); null while it runs
   * and for a server that failed or exited on its own.
   */
  readonly stopCause: string | null;
}

/** A public SSH key a user registered. `data` is the key's wire form, base64. */
export interface SshKeyRecord {
  readonly id: string;
  readonly user: string;
  /** e.g. `ssh-ed25519`. */
  readonly algo: string;
  readonly data: string;
  readonly comment: string;
  /** `SHA256:…`, as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
  readonly created: string;
}

/** One event in the hub's audit log. `data` never holds secrets. */
export interface EventRecord {
  readonly id: number;
  readonly time: string;
  readonly kind: string;
  readonly user: string | null;
  readonly instanceId: string | null;
  readonly message: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export type NewUser = Pick<UserRecord, 'name' | 'admin' | 'passwordHash'>;
export type UserPatch = Partial<Pick<UserRecord, 'admin' | 'passwordHash' | 'disabled' | 'lastActivity'>>;
export type SessionPatch = Partial<Omit<SessionRecord, 'id' | 'user' | 'name' | 'token' | 'started' | 'profile'>>;

/**
 * Everything the hub persists. Only the hub writes it. Every implementation passes `store.conformance.ts`.
 */
export interface Store {
  /** Creates a user with the next UID/GID from a counter that never goes back (from `uidBase`; a deleted user's UID is never reused). Throws `UserExistsError`. */
  createUser(user: NewUser): Promise<UserRecord>;
  getUser(name: string): Promise<UserRecord | undefined>;
  listUsers(): Promise<UserRecord[]>;
  /** Throws `UserNotFoundError`. */
  updateUser(name: string, patch: UserPatch): Promise<UserRecord>;
  /** Removes the user with their tokens, logins and sessions; false when there was none. */
  deleteUser(name: string): Promise<boolean>;

  createToken(token: Omit<TokenRecord, 'lastActivity'>): Promise<TokenRecord>;
  findTokenByHash(hash: string): Promise<TokenRecord | undefined>;
  listTokens(user: string): Promise<TokenRecord[]>;
  deleteToken(user: string, id: string): Promise<boolean>;
  touchToken(id: string, time: string): Promise<void>;

  createLogin(login: LoginRecord): Promise<void>;
  findLogin(hash: string): Promise<LoginRecord | undefined>;
  deleteLogin(hash: string): Promise<void>;
  deleteExpiredLogins(now: string): Promise<number>;

  createJoinToken(token: JoinTokenRecord): Promise<void>;
  /**
   * Removes the join token with this hash and returns it, expired or not (one use: it is gone whatever the caller
   * decides next; two callers racing for one token get it once); undefined when there is none.
   */
  takeJoinToken(hash: string): Promise<JoinTokenRecord | undefined>;
  /** Removes join tokens whose `expiresAt` is before `now` (ISO-8601); returns how many. */
  deleteExpiredJoinTokens(now: string): Promise<number>;

  putInstance(instance: InstanceRecord): Promise<void>;
  getInstance(id: string): Promise<InstanceRecord | undefined>;
  listInstances(): Promise<InstanceRecord[]>;
  deleteInstance(id: string): Promise<void>;

  createSession(session: SessionRecord): Promise<void>;
  getSession(id: string): Promise<SessionRecord | undefined>;
  updateSession(id: string, patch: SessionPatch): Promise<SessionRecord>;
  /** Sessions that are not `stopped`/`failed`, oldest first. */
  listActiveSessions(): Promise<SessionRecord[]>;
  /** The user's newest session (any state), if any. */
  latestSession(user: string, name: string): Promise<SessionRecord | undefined>;

  /** Throws `SshKeyExistsError` when the user already has this key. */
  addSshKey(key: SshKeyRecord): Promise<void>;
  listSshKeys(user: string): Promise<SshKeyRecord[]>;
  /** True when `user` registered the key `algo` + `data` (base64 wire form). */
  hasSshKey(user: string, algo: string, data: string): Promise<boolean>;
  deleteSshKey(user: string, id: string): Promise<boolean>;

  /** A small piece of hub state kept across restarts (e.g. the pool's desired size), as JSON. */
  getSetting(key: string): Promise<unknown>;
  putSetting(key: string, value: unknown): Promise<void>;

  addEvent(event: Omit<EventRecord, 'id'>): Promise<EventRecord>;
  listEvents(options: { limit: number; afterId?: number }): Promise<EventRecord[]>;

  /** Safe to call twice. */
  close(): Promise<void>;
}
