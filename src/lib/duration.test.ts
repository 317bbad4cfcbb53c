import { describe, expect, it } from 'vitest';
import { parseDuration } from './duration.js';

describe('parseDuration', () => {
  it('reads compound units and plain milliseconds', () => {
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(parseDuration('250ms')).toBe(250);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1500')).toBe(1500);
    expect(parseDuration(42)).toBe(42);
  });
  it('refuses text that is not a duration', () => {
    expect(parseDuration('soon')).toBeUndefined();
    expect(parseDuration('10 s')).toBeUndefined();
    expect(parseDuration('5x')).toBeUndefined();
    expect(parseDuration(-1)).toBeUndefined();
    expect(parseDuration('')).toBeUndefined();
  });
});
