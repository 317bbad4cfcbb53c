// Errors of the autoscaler's simulator.

/** Thrown by `parseTrace` for a trace line that is not a valid arrival; `line` is 1-based. */
export class TraceError extends Error {
  override readonly name = 'TraceError';
  readonly code = 'trace_invalid';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly problem: string,
  ) {
    super(`${file}:${line}: ${problem}`);
  }
}
