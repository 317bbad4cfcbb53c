import { describe, expect, it } from 'vitest';
import { InvalidTransitionError, Lifecycle, transitions } from './state.js';

type Door = 'open' | 'closed' | 'gone';
const table = { open: ['closed'], closed: ['open', 'gone'], gone: [] } as const satisfies Record<Door, readonly Door[]>;

describe('transitions', () => {
  it('returns the next state along an edge and refuses any other move, naming both states', () => {
    const next = transitions<Door>('door', table);
    expect(next('open', 'closed')).toBe('closed');
    expect(() => next('open', 'gone')).toThrow(InvalidTransitionError);
    expect(() => next('gone', 'open')).toThrow(/door: cannot go from "gone" to "open"/);
  });
});

describe('Lifecycle', () => {
  it('moves along its table, logs each move and keeps its state when a move is refused', () => {
    const moves: object[] = [];
    const life = new Lifecycle<Door>('door', 'open', table, { debug: (fields) => moves.push(fields) });
    life.to('closed');
    expect(life.state).toBe('closed');
    expect(() => life.to('closed')).toThrow(InvalidTransitionError);
    expect(life.state).toBe('closed');
    life.to('gone');
    expect(moves).toEqual([
      { component: 'door', from: 'open', to: 'closed' },
      { component: 'door', from: 'closed', to: 'gone' },
    ]);
  });
});
