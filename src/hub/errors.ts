// Errors the hub raises, each with a stable `code`; `HTTP_STATUS` maps codes to statuses in one table.

/** Base of every hub error that reaches an API client. `field` names the one input at fault, if any. */
export class HubError extends Error {
  override name = 'HubError';
  constructor(
    readonly code: HubErrorCode,
    message: string,
    readonly field?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Thrown for input that fails validation (bad JSON body, invalid username, unknown field). */
export class BadRequestError extends HubError {
  override name = 'BadRequestError';
  constructor(message: string, field?: string) {
    super('bad_request', message, field);
  }
}

/** Thrown when a request carries no valid credential. */
export class UnauthorizedError extends HubError {
  override name = 'UnauthorizedError';
  constructor(message = 'authentication required: log in or send "Authorization: token <token>"') {
    super('unauthorized', message);
  }
}

/** Thrown when the caller may not act on the target (another user's server, an admin-only route). */
export class ForbiddenError extends HubError {
  override name = 'ForbiddenError';
  constructor(message: string) {
    super('forbidden', message);
  }
}

/** Thrown for a user name with no user. */
export class UserNotFoundError extends HubError {
  override name = 'UserNotFoundError';
  constructor(readonly user: string) {
    super('not_found', `no user named "${user}"`);
  }
}

/** Thrown for an unknown instance id. */
export class InstanceNotFoundError extends HubError {
  override name = 'InstanceNotFoundError';
  constructor(readonly instanceId: string) {
    super('not_found', `no instance "${instanceId}"`);
  }
}

/** Thrown when deleting a token or SSH key the user does not have. */
export class CredentialNotFoundError extends HubError {
  override name = 'CredentialNotFoundError';
  constructor(readonly user: string, readonly kind: 'token' | 'SSH key', readonly credentialId: string) {
    super('not_found', `${user} has no ${kind} "${credentialId}"`);
  }
}

/** Thrown when creating a user whose name is taken. */
export class UserExistsError extends HubError {
  override name = 'UserExistsError';
  constructor(readonly user: string) {
    super('conflict', `user "${user}" already exists`, 'name');
  }
}

/** Thrown when a server cannot be started (no instance became ready, the agent failed, Jupyter died). */
export class ServerStartError extends HubError {
  override name = 'ServerStartError';
  constructor(readonly user: string, message: string, readonly agentCode?: string) {
    super('server_start_failed', message);
  }
}

/** Thrown when an operation is illegal in the current lifecycle state. */
export class InvalidStateError extends HubError {
  override name = 'InvalidStateError';
  constructor(readonly what: string, readonly state: string, readonly attempted: string) {
    super('conflict', `${what} is ${state}; cannot ${attempted}`);
  }
}

/** Thrown when draining or removing an instance that is protected from removal. */
export class InstanceProtectedError extends HubError {
  override name = 'InstanceProtectedError';
  constructor(readonly instanceId: string) {
    super('conflict', `instance ${instanceId} is protected from removal; unprotect it first (dspool instances protect ${instanceId} --off)`);
  }
}

/** Thrown for a profile the pool does not define, or one no instance of the pool can ever satisfy. */
export class ProfileError extends HubError {
  override name = 'ProfileError';
  constructor(readonly profile: string, message: string) {
    super('bad_request', message, 'profile');
  }
}

export type HubErrorCode =
  | 'bad_request' | 'unauthorized' | 'forbidden' | 'not_found' | 'conflict' | 'server_start_failed' | 'unavailable' | 'internal';

/** The one table from error code to HTTP status. */
export const HTTP_STATUS: Record<HubErrorCode, 400 | 401 | 403 | 404 | 409 | 500 | 503> = {
  bad_request: 400,
  // JupyterHub answers 403 to a missing or invalid credential, and its clients rely on it (HubAuth reads a 403
  // from GET /hub/api/user as "no such user" and anything else as a failure).
  unauthorized: 403,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  server_start_failed: 500,
  unavailable: 503,
  internal: 500,
};
