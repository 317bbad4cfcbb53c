// Errors the store throws.

/** Thrown by `Store.createUser` when the name is taken. */
export class UserExistsError extends Error {
  override readonly name = 'UserExistsError';
  readonly code = 'user_exists';
  constructor(readonly user: string) {
    super(`user "${user}" already exists`);
  }
}

/** Thrown by `Store.updateUser` for a name with no user. */
export class UserNotFoundError extends Error {
  override readonly name = 'UserNotFoundError';
  readonly code = 'user_not_found';
  constructor(readonly user: string) {
    super(`no user named "${user}"`);
  }
}

/** Thrown by `Store.updateSession` for an unknown session id. */
export class SessionNotFoundError extends Error {
  override readonly name = 'SessionNotFoundError';
  readonly code = 'session_not_found';
  constructor(readonly sessionId: string) {
    super(`no session "${sessionId}"`);
  }
}

/** Thrown when the store file was written by a newer dspool (its schema version is unknown). */
export class StoreVersionError extends Error {
  override readonly name = 'StoreVersionError';
  readonly code = 'store_version';
  constructor(readonly found: number, readonly supported: number) {
    super(`the store has schema version ${found}; this dspool supports up to ${supported}`);
  }
}

/** Thrown by `Store.addSshKey` when the user already registered that key. */
export class SshKeyExistsError extends Error {
  override readonly name = 'SshKeyExistsError';
  readonly code = 'ssh_key_exists';
  constructor(readonly user: string, readonly fingerprint: string) {
    super(`${user} already registered the key ${fingerprint}`);
  }
}
