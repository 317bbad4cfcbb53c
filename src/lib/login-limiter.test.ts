import { describe, expect, it } from 'vitest';
import { LoginLimiter, addressKey } from './login-limiter.js';

const wrong = (): Promise<boolean> => Promise.resolve(false);
const right = (): Promise<boolean> => Promise.resolve(true);
const isFailure = (ok: boolean): boolean => !ok;

describe('LoginLimiter', () => {
  it('limits a (user, address) pair after its failures and never the same user from another address', async () => {
    let now = 1_000_000;
    const limiter = new LoginLimiter({ windowMs: 60_000, perPair: 3, perAddress: 100 }, () => now);
    const outcomes = [];
    for (let i = 0; i < 3; i++) outcomes.push(await limiter.attempt('admin', '203.0.113.9', wrong, isFailure));
    expect(outcomes.map((o) => o.outcome)).toEqual(['checked', 'checked', 'checked']);
    expect(outcomes[2]).toMatchObject({ failed: true, locked: 'pair' });
    expect(await limiter.attempt('admin', '203.0.113.9', right, isFailure)).toEqual({ outcome: 'limited', by: 'pair', retryAfterMs: 60_000 });
    // The real admin, from their own address, is checked and let in.
    expect(await limiter.attempt('admin', '198.51.100.7', right, isFailure)).toEqual({ outcome: 'checked', value: true, failed: false });
    now += 60_001;
    expect((await limiter.attempt('admin', '203.0.113.9', right, isFailure)).outcome).toBe('checked');
  });

  it('limits an address that fails for many user names, and only that address', async () => {
    const limiter = new LoginLimiter({ perPair: 100, perAddress: 3 });
    for (const user of ['a', 'b', 'c']) await limiter.attempt(user, '192.0.2.1', wrong, isFailure);
    expect(await limiter.attempt('d', '192.0.2.1', right, isFailure)).toMatchObject({ outcome: 'limited', by: 'address' });
    expect((await limiter.attempt('d', '192.0.2.2', right, isFailure)).outcome).toBe('checked');
  });

  it('forgets a pair\'s failures after a success', async () => {
    const limiter = new LoginLimiter({ perPair: 2 });
    await limiter.attempt('alice', '10.0.0.1', wrong, isFailure);
    await limiter.attempt('alice', '10.0.0.1', right, isFailure);
    await limiter.attempt('alice', '10.0.0.1', wrong, isFailure);
    expect(limiter.check('alice', '10.0.0.1')).toBeUndefined();
  });

  it('runs at most maxConcurrent checks at once, queues a bounded number and refuses the rest as busy', async () => {
    const limiter = new LoginLimiter({ maxConcurrent: 2, maxQueued: 3, perAddressInFlight: 100, maxWaitMs: 60_000 });
    let running = 0;
    let peak = 0;
    const releases: (() => void)[] = [];
    const slow = (): Promise<boolean> => {
      running++;
      peak = Math.max(peak, running);
      return new Promise((resolve) => releases.push(() => {
        running--;
        resolve(false);
      }));
    };
    const attempts = Array.from({ length: 7 }, (_, i) => limiter.attempt(`u${i}`, '10.0.0.1', slow, isFailure));
    const settled = await Promise.all(attempts.slice(5));
    expect(settled).toEqual([{ outcome: 'busy', by: 'queue' }, { outcome: 'busy', by: 'queue' }]);
    expect(limiter.load()).toEqual({ running: 2, queued: 3 });
    for (let round = 0; round < 10 && releases.length > 0; round++) {
      releases.splice(0).forEach((release) => release());
      await new Promise((r) => setTimeout(r, 0));
    }
    const done = await Promise.all(attempts.slice(0, 5));
    expect(done.every((a) => a.outcome === 'checked')).toBe(true);
    expect(peak).toBe(2);
    expect(limiter.load()).toEqual({ running: 0, queued: 0 });
  });

  it('lets one address hold only perAddressInFlight checks, so a flood from it cannot fill the queue', async () => {
    const limiter = new LoginLimiter({ maxConcurrent: 1, maxQueued: 10, perAddressInFlight: 2 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = async (): Promise<boolean> => {
      await gate;
      return false;
    };
    const flood = Array.from({ length: 5 }, () => limiter.attempt('admin', '203.0.113.9', slow, isFailure));
    const other = limiter.attempt('admin', '198.51.100.7', right, isFailure);
    expect(await flood[2]).toEqual({ outcome: 'busy', by: 'address' });
    expect(limiter.load()).toEqual({ running: 1, queued: 2 });
    release();
    expect(await other).toEqual({ outcome: 'checked', value: true, failed: false });
  });

  it('refuses as busy a check that waited longer than maxWaitMs for its turn, and frees its place in line', async () => {
    const limiter = new LoginLimiter({ maxConcurrent: 1, maxWaitMs: 50, perAddressInFlight: 100 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const first = limiter.attempt('a', '10.0.0.1', async () => {
      await gate;
      return true;
    }, isFailure);
    expect(await limiter.attempt('b', '10.0.0.2', right, isFailure)).toEqual({ outcome: 'busy', by: 'wait' });
    expect(limiter.load()).toEqual({ running: 1, queued: 0 });
    release();
    expect((await first).outcome).toBe('checked');
    expect(limiter.load()).toEqual({ running: 0, queued: 0 });
  });

  it('counts an IPv6 address by its /64 and an IPv4-mapped one as IPv4', () => {
    expect(addressKey('::ffff:10.0.0.5')).toBe('10.0.0.5');
    expect(addressKey('2001:db8:1:2:3:4:5:6')).toBe('2001:db8:1:2::/64');
    expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    const limiter = new LoginLimiter({ perAddress: 2, perPair: 100 });
    limiter.fail('a', '2001:db8:1:2::1');
    limiter.fail('b', '2001:db8:1:2::ffff');
    expect(limiter.check('c', '2001:db8:1:2:abcd::1')?.by).toBe('address');
    expect(limiter.check('c', '2001:db8:1:3::1')).toBeUndefined();
  });

  it('forgets the oldest keys when it tracks too many', () => {
    const limiter = new LoginLimiter({ perPair: 1, perAddress: 1000, maxKeys: 2 });
    limiter.fail('u1', 'x');
    limiter.fail('u2', 'x');
    limiter.fail('u3', 'x');
    expect(limiter.check('u1', 'x')).toBeUndefined();
    expect(limiter.check('u3', 'x')?.by).toBe('pair');
  });
});
