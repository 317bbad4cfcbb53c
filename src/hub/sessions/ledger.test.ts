import { describe, expect, it } from 'vitest';
import { Ledger } from './ledger.js';

describe('Ledger', () => {
  it('keeps per-instance usage in step with reservations, moving a session that is reserved again', () => {
    const ledger = new Ledger();
    ledger.reserve('s-1', 'i-1', { cpu: 2, memoryBytes: 100, gpus: [0] });
    ledger.reserve('s-2', 'i-1', { cpu: 1, memoryBytes: 50, gpus: [1] });
    expect(ledger.usageOf('i-1')).toEqual({ cpu: 3, memoryBytes: 150, gpus: new Set([0, 1]), sessions: 2 });
    // Re-adoption after a hub restart may report s-1 on another instance: it moves, nothing is counted twice.
    ledger.reserve('s-1', 'i-2', { cpu: 2, memoryBytes: 100, gpus: [0] });
    expect(ledger.usageOf('i-1')).toEqual({ cpu: 1, memoryBytes: 50, gpus: new Set([1]), sessions: 1 });
    expect(ledger.sessionsOn('i-2')).toBe(1);
    expect(ledger.allocationOf('s-1')?.instanceId).toBe('i-2');
  });

  it('frees a reservation once, and forgets an empty instance that left the pool', () => {
    const ledger = new Ledger();
    ledger.reserve('s-1', 'i-1', { cpu: 1, memoryBytes: 1, gpus: [0] });
    ledger.reserve('s-2', 'i-2', { cpu: 1, memoryBytes: 1, gpus: [] });
    const gone = ledger.usageOf('i-1');
    const kept = ledger.usageOf('i-2');
    expect(ledger.release('s-1', () => false)).toBe(true);
    expect(ledger.release('s-1', () => false)).toBe(false);
    expect(ledger.release('s-2', () => true)).toBe(true);
    expect(ledger.sessionsOn('i-1')).toBe(0);
    expect(ledger.usageOf('i-1')).not.toBe(gone);
    // i-2 is still in the pool: its (empty) usage is kept, so placement keeps reading the same object.
    expect(ledger.usageOf('i-2')).toBe(kept);
    expect(kept).toEqual({ cpu: 0, memoryBytes: 0, gpus: new Set(), sessions: 0 });
  });
});
