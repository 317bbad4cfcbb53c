// Errors thrown by the instance-side SSH server.

/** Thrown by `startInstanceSshServer` when `internalPublicKey` or `hostKey` is not a usable OpenSSH key. */
export class InstanceSshKeyError extends Error {
  override readonly name = 'InstanceSshKeyError';
  readonly code = 'ssh_key_invalid';
  constructor(
    readonly which: 'internalPublicKey' | 'hostKey',
    options?: { cause?: unknown },
  ) {
    super(`instance SSH server: ${which} is not a valid OpenSSH key`, options);
  }
}

/** Thrown by `startInstanceSshServer` when it cannot listen on `host:port` (`cause` is the socket error). */
export class InstanceSshListenError extends Error {
  override readonly name = 'InstanceSshListenError';
  readonly code = 'ssh_listen_failed';
  constructor(
    readonly host: string,
    readonly port: number,
    options?: { cause?: unknown },
  ) {
    super(`instance SSH server: cannot listen on ${host}:${port}`, options);
  }
}
