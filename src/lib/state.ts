// A tiny, explicit state machine: a table of legal transitions and one function that checks and applies them.

/** Thrown when a lifecycle is asked to move along an edge its table does not have. */
export class InvalidTransitionError extends Error {
  override readonly name = 'InvalidTransitionError';
  readonly code = 'invalid_transition';
  constructor(readonly machine: string, readonly from: string, readonly to: string) {
    super(`${machine}: cannot go from "${from}" to "${to}"`);
  }
}

/** Legal next states for each state. */
export type TransitionTable<S extends string> = Readonly<Record<S, readonly S[]>>;

/**
 * Returns a checker for one lifecycle: `next(from, to)` returns `to` or throws `InvalidTransitionError`.
 *
 * @example
 * const next = transitions('door', { open: ['closed'], closed: ['open'] });
 * next('open', 'closed'); // 'closed'
 */
export function transitions<S extends string>(machine: string, table: TransitionTable<S>) {
  return (from: S, to: S): S => {
    if (!table[from].includes(to)) throw new InvalidTransitionError(machine, from, to);
    return to;
  };
}
