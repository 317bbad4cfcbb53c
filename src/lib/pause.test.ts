import { describe, expect, it } from 'vitest';
import { Pause } from './pause.js';

describe('Pause', () => {
  it('sleeps for the time asked', async () => {
    const started = Date.now();
    await new Pause().for(50);
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
  });

  it('ends a sleep early on wake(), and wake() with nobody asleep does nothing', async () => {
    const pause = new Pause();
    pause.wake();
    const started = Date.now();
    setTimeout(() => pause.wake(), 20);
    await pause.for(10_000);
    expect(Date.now() - started).toBeLessThan(5_000);
  });
});
