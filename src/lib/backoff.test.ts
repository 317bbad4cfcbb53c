import { describe, expect, it } from 'vitest';
import { backoffMs } from './backoff.js';

describe('backoffMs', () => {
  it('doubles from the minimum per attempt and stops at the maximum, for any attempt count', () => {
    expect([0, 1, 2, 3, 4, 5, 6].map((n) => backoffMs(n, 2000, 60_000))).toEqual([2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]);
    expect(backoffMs(10_000, 250, 10_000)).toBe(10_000);
    expect(backoffMs(-1, 250, 10_000)).toBe(250);
  });
});
