import { describe, expect, it } from 'vitest';
import { emptyUsage, type Room } from '../sessions/placement.js';
import { freeSlots, MAX_SLOTS } from './slots.js';

const room: Room = { cpus: 8, memoryBytes: 32 * 2 ** 30, gpuIndices: [0, 1], maxSessions: 6 };

describe('free session slots', () => {
  it('counts what placement would still fit, by every resource', () => {
    expect(freeSlots(room, emptyUsage(), { cpu: 1, memoryBytes: 2 ** 30, gpus: 0 })).toBe(6); // the session limit
    expect(freeSlots(room, emptyUsage(), { cpu: 3, memoryBytes: 0, gpus: 0 })).toBe(2); // CPU
    expect(freeSlots(room, emptyUsage(), { cpu: 0, memoryBytes: 0, gpus: 1 })).toBe(2); // GPUs
    expect(freeSlots(room, { cpu: 7, memoryBytes: 0, gpus: new Set([0]), sessions: 2 }, { cpu: 1, memoryBytes: 0, gpus: 0 })).toBe(1);
  });

  it('counts a profile that reserves nothing by the session limit alone', () => {
    expect(freeSlots(room, { ...emptyUsage(), sessions: 4 }, { cpu: 0, memoryBytes: 0, gpus: 0 })).toBe(2);
    expect(freeSlots({ ...room, maxSessions: null }, emptyUsage(), { cpu: 0, memoryBytes: 0, gpus: 0 })).toBe(MAX_SLOTS);
  });
});
