// Errors of the SSH front door.

/**
 * Thrown by `loadOrCreateHostKey` (and so by `startSshFrontDoor`) when the host key file exists but is not a
 * private OpenSSH key, or cannot be read or written. The file is never overwritten: a changed host key would
 * make every client refuse the gateway.
 */
export class SshHostKeyError extends Error {
  override readonly name = 'SshHostKeyError';
  readonly code = 'ssh_host_key_invalid';
  constructor(
    readonly file: string,
    options?: { cause?: unknown },
  ) {
    super(`SSH host key ${file} cannot be used`, options);
  }
}

/** Thrown by `startSshFrontDoor` when it cannot listen on `host:port` (`cause` is the socket error). */
export class SshListenError extends Error {
  override readonly name = 'SshListenError';
  readonly code = 'ssh_listen_failed';
  constructor(
    readonly host: string,
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    super(`SSH front door: cannot listen on ${host}:${port}`, options);
  }
}

/**
 * Thrown by a `SessionLocator` when the user cannot get a session (no capacity, start failed, disabled). Its
 * message is shown to the user in the SSH banner, so it must be fit for them; any other error shows a generic line.
 */
export class SshSessionUnavailableError extends Error {
  override readonly name = 'SshSessionUnavailableError';
  readonly code = 'ssh_session_unavailable';
  constructor(
    message: string,
    readonly user: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Thrown by a held connection's hop (`front-door.ts`) when a channel that did not ask for a terminal (an exec, a
 * subsystem, a forward) would start a server the pool stopped; `message` is the hub's explanation for the user,
 * written on the channel's stderr before the connection ends.
 */
export class SshServerHeldError extends Error {
  override readonly name = 'SshServerHeldError';
  readonly code = 'ssh_server_held';
  constructor(
    message: string,
    readonly user: string,
  ) {
    super(message);
  }
}
