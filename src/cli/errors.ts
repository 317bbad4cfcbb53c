// Errors the CLI turns into exit codes: 2 for bad usage or input, 1 when an operation fails.

/** Bad usage or bad input (exit code 2); the message names the argument or field. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly exitCode = 2;
}

/** An operation that failed (exit code 1): hub unreachable, API error, a process that would not start. */
export class OperationError extends Error {
  override readonly name = 'OperationError';
  readonly exitCode = 1;
  constructor(message: string, readonly status?: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}
