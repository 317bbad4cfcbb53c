// One validated state machine for the SSH servers (instance side and front door): every transition is checked
// against a table and logged, so a lifecycle is never a pile of booleans.
import type { Logger } from '../lib/log.js';

/**
 * Thrown by `Lifecycle.to` when a transition is not in the component's table, and by components whose method
 * is called in a state that does not allow it. `state` is where the component was.
 */
export class SshStateError extends Error {
  override readonly name = 'SshStateError';
  readonly code = 'ssh_illegal_state';
  constructor(
    readonly component: string,
    readonly state: string,
    readonly attempted: string,
  ) {
    super(`${component}: cannot ${attempted} while ${state}`);
  }
}

/**
 * Holds one component's state and moves it along the allowed edges only.
 *
 * @example
 * const life = new Lifecycle('front door', 'starting', { starting: ['listening', 'closed'], listening: ['closing'], closing: ['closed'], closed: [] }, log);
 * life.to('listening');
 */
export class Lifecycle<S extends string> {
  #state: S;
  constructor(
    private readonly component: string,
    initial: S,
    private readonly edges: Readonly<Record<S, readonly S[]>>,
    private readonly log: Logger,
  ) {
    this.#state = initial;
  }

  get state(): S {
    return this.#state;
  }

  /** Moves to `next`; throws `SshStateError` when the table does not allow it. */
  to(next: S): void {
    const from = this.#state;
    if (!this.edges[from].includes(next)) throw new SshStateError(this.component, from, `move to ${next}`);
    this.#state = next;
    this.log.debug({ component: this.component, from, to: next }, 'state');
  }
}
