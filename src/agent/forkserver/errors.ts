// Errors of the fork server client. None crosses the hub ↔ agent boundary: every one of them makes the agent
// start the server the plain way (exec) instead, with the error as the recorded reason.

/** Base of the fork server's errors; `reason` is a short stable word for logs and progress events. */
export class ForkServerError extends Error {
  override readonly name: string = 'ForkServerError';
  constructor(
    readonly reason: 'unavailable' | 'lost' | 'refused' | 'timeout',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Thrown by `ForkServer.spawn` when the fork server is not running (not started, restarting, closed, or off). */
export class ForkServerUnavailableError extends ForkServerError {
  override readonly name = 'ForkServerUnavailableError';
  constructor(
    readonly state: string,
    options?: { cause?: unknown },
  ) {
    super('unavailable', `the fork server is ${state}`, options);
  }
}

/**
 * Thrown by `ForkServer.spawn` (and rejected by a `ForkedProcess`'s `ready`) when the fork server died while the
 * start was in flight; the child, if any, dies with it (it was not ready yet).
 */
export class ForkServerLostError extends ForkServerError {
  override readonly name = 'ForkServerLostError';
  constructor(
    readonly id: string,
    options?: { cause?: unknown },
  ) {
    super('lost', `the fork server went away during start ${id}`, options);
  }
}

/** Thrown by `ForkServer.spawn` when the fork server or the child refused the spec (its message says why). */
export class ForkRefusedError extends ForkServerError {
  override readonly name = 'ForkRefusedError';
  constructor(
    readonly id: string,
    readonly detail: string,
  ) {
    super('refused', `fork ${id} failed: ${detail}`);
  }
}

/** Thrown by `ForkServer.start` when the Python process does not come up in time (or exits while starting). */
export class ForkServerStartError extends ForkServerError {
  override readonly name = 'ForkServerStartError';
  constructor(
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super('timeout', `the fork server did not start: ${detail}`, options);
  }
}
