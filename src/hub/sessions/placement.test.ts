import { describe, expect, it } from 'vitest';
import type { InstanceView } from '../instances/pool.js';
import { choosePlacement } from './placement.js';

const instance = (id: string): InstanceView => ({
  id, state: 'ready', address: '127.0.0.1', created: '', details: {}, capacity: null, load: null, lastHeartbeat: null,
  sshPort: null, isolation: null, detail: null,
});

describe('choosePlacement', () => {
  it('picks the ready instance with the fewest sessions', () => {
    const counts: Record<string, number> = { a: 3, b: 1, c: 2 };
    expect(choosePlacement([instance('a'), instance('b'), instance('c')], (id) => counts[id] ?? 0)?.id).toBe('b');
  });
  it('breaks ties by order (the oldest instance first)', () => {
    expect(choosePlacement([instance('a'), instance('b')], () => 0)?.id).toBe('a');
  });
  it('returns nothing when no instance is ready', () => {
    expect(choosePlacement([], () => 0)).toBeUndefined();
  });
});
