import { describe, expect, it } from 'vitest';
import { FailureLimiter } from './rate-limit.js';

describe('FailureLimiter', () => {
  it('refuses a user after the per-user limit and lets them in again once the window has passed', () => {
    let now = 1_000_000;
    const limiter = new FailureLimiter({ windowMs: 60_000, perUser: 3, perAddress: 100 }, () => now);
    for (let i = 0; i < 3; i++) {
      expect(limiter.check('alice', '10.0.0.1')).toBeUndefined();
      limiter.fail('alice', `10.0.0.${i}`);
    }
    expect(limiter.check('alice', '10.0.0.9')).toEqual({ by: 'user', retryAfterMs: 60_000 });
    expect(limiter.check('bob', '10.0.0.9')).toBeUndefined();
    now += 60_001;
    expect(limiter.check('alice', '10.0.0.9')).toBeUndefined();
  });

  it('refuses an address that fails for many different users', () => {
    const limiter = new FailureLimiter({ windowMs: 60_000, perUser: 100, perAddress: 2 });
    limiter.fail('a', '192.0.2.1');
    limiter.fail('b', '192.0.2.1');
    expect(limiter.check('c', '192.0.2.1')?.by).toBe('address');
    expect(limiter.check('c', '192.0.2.2')).toBeUndefined();
  });

  it('forgets the oldest keys when it tracks too many', () => {
    const limiter = new FailureLimiter({ windowMs: 60_000, perUser: 1, perAddress: 1000 }, Date.now, 2);
    limiter.fail('u1', 'x');
    limiter.fail('u2', 'x');
    limiter.fail('u3', 'x');
    expect(limiter.check('u1', 'y')).toBeUndefined();
    expect(limiter.check('u3', 'y')?.by).toBe('user');
  });
});
