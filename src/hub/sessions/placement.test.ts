import { describe, expect, it } from 'vitest';
import { decidePlacement, emptyUsage, neverFitsReason, type Candidate, type Room } from './placement.js';

const room = (over: Partial<Room> = {}): Room => ({ cpus: 8, memoryBytes: 32 * 2 ** 30, gpuIndices: [], maxSessions: null, ...over });
const candidate = (id: string, sessions = 0, over: Partial<Room> = {}): Candidate => ({
  id, room: room(over), usage: { ...emptyUsage(), sessions },
});
const none = { cpu: 0, memoryBytes: 0, gpus: 0 };

describe('decidePlacement', () => {
  it('spreads a session to the ready instance with the fewest sessions', () => {
    const decision = decidePlacement([candidate('a', 3), candidate('b', 1), candidate('c', 2)], none, { strategy: 'spread' });
    expect(decision).toMatchObject({ outcome: 'placed', instanceId: 'b' });
  });

  it('packs a session onto the busiest instance that still fits', () => {
    const candidates = [candidate('a', 1, { maxSessions: 4 }), candidate('b', 3, { maxSessions: 4 }), candidate('c', 4, { maxSessions: 4 })];
    const decision = decidePlacement(candidates, none, { strategy: 'pack' });
    expect(decision).toMatchObject({ outcome: 'placed', instanceId: 'b' });
    expect(decision.reason).toMatch(/^pack/);
  });

  it('breaks ties by order (the oldest instance first)', () => {
    expect(decidePlacement([candidate('a'), candidate('b')], none, { strategy: 'spread' })).toMatchObject({ instanceId: 'a' });
  });

  it('keeps a user on the instance they already run on when it fits', () => {
    const decision = decidePlacement([candidate('a', 0), candidate('b', 5)], none, { strategy: 'spread', sticky: 'b' });
    expect(decision).toMatchObject({ outcome: 'placed', instanceId: 'b' });
    expect(decision.reason).toMatch(/sticky/);
  });

  it('grants free GPUs only and never the same GPU twice', () => {
    const busy = candidate('a', 1, { gpuIndices: [0, 1] });
    busy.usage.gpus.add(0);
    const decision = decidePlacement([busy], { cpu: 0, memoryBytes: 0, gpus: 1 }, { strategy: 'spread' });
    expect(decision).toMatchObject({ outcome: 'placed', gpus: [1] });
    busy.usage.gpus.add(1);
    expect(decidePlacement([busy], { cpu: 0, memoryBytes: 0, gpus: 1 }, { strategy: 'spread' }).outcome).toBe('wait');
  });

  it('waits when no instance has room for the cpu and memory asked', () => {
    const full = candidate('a', 1, { cpus: 2 });
    full.usage.cpu = 1.5;
    const decision = decidePlacement([full], { cpu: 1, memoryBytes: 0, gpus: 0 }, { strategy: 'spread' });
    expect(decision).toMatchObject({ outcome: 'wait', reason: 'none of 1 ready instance(s) has room' });
  });

  it('waits when no instance is ready', () => {
    expect(decidePlacement([], none, { strategy: 'spread' })).toMatchObject({ outcome: 'wait', reason: 'no instance is ready' });
  });
});

describe('neverFitsReason', () => {
  it('names the resource a request can never get', () => {
    expect(neverFitsReason(room({ gpuIndices: [0] }), { cpu: 0, memoryBytes: 0, gpus: 4 })).toBe('needs 4 GPU(s); an instance has 1');
    expect(neverFitsReason(room(), { cpu: 16, memoryBytes: 0, gpus: 0 })).toMatch(/16 CPU cores/);
    expect(neverFitsReason(room(), none)).toBeUndefined();
  });
});
