// A tiny, explicit state machine: a table of legal transitions and one function that checks and applies them.

/**
 * Thrown when a lifecycle is asked to move along an edge its table does not have.
 *
 * @example
 * new InvalidTransitionError('session', 'stopped', 'running').message; // 'session: cannot go from "stopped" to "running"'
 */
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

/**
 * Holds one component's state and moves it along its table's edges only, logging each move (debug).
 *
 * @example
 * const life = new Lifecycle('front door', 'starting', { starting: ['listening', 'closed'], listening: ['closing'], closing: ['closed'], closed: [] }, log);
 * life.to('listening');
 */
export class Lifecycle<S extends string> {
  #state: S;
  readonly #next: (from: S, to: S) => S;

  constructor(
    private readonly component: string,
    initial: S,
    table: TransitionTable<S>,
    private readonly log: { debug(fields: object, message: string): void },
  ) {
    this.#state = initial;
    this.#next = transitions(component, table);
  }

  get state(): S {
    return this.#state;
  }

  /** Moves to `next`; throws `InvalidTransitionError` when the table does not allow it. */
  to(next: S): void {
    const from = this.#state;
    this.#state = this.#next(from, next);
    this.log.debug({ component: this.component, from, to: next }, 'state');
  }
}
