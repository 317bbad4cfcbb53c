import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { parseConfig } from './load.js';

const parse = (pool: string) => parseConfig(`share: { path: /srv/share }\npool: ${pool}\n`, '/etc/dspool/pool.yaml');
const problems = (pool: string): string => {
  try {
    parse(pool);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('the config was accepted');
};

describe('pool.yaml pool.cull and profile idle timeouts', () => {
  it('culls after an hour of no work by default, warning ten minutes before', () => {
    const { pool } = parse('{}');
    expect(pool.cull).toEqual({ idleTimeout: 3_600_000, warnBefore: 600_000, saveTimeout: 15_000, interval: 15_000 });
  });

  it('takes durations people write, null for never, and a timeout per profile', () => {
    const { pool } = parse('{ cull: { idleTimeout: 30m, warnBefore: 2m }, profiles: { gpu: { gpus: 0, idleTimeout: 10m }, always: { idleTimeout: null } } }');
    expect(pool.cull.idleTimeout).toBe(1_800_000);
    expect(pool.cull.warnBefore).toBe(120_000);
    expect(pool.profiles.gpu?.idleTimeout).toBe(600_000);
    expect(pool.profiles.always?.idleTimeout).toBeNull();
    expect(parse('{ cull: { idleTimeout: null } }').pool.cull.idleTimeout).toBeNull();
  });

  it('refuses a timeout that is not a duration or is zero, naming the key', () => {
    expect(problems('{ cull: { idleTimeout: soon } }')).toMatch(/pool\.cull\.idleTimeout.*not a duration/);
    expect(problems('{ cull: { idleTimeout: 0 } }')).toMatch(/pool\.cull\.idleTimeout.*more than 0/);
    expect(problems('{ profiles: { a: { idleTimeout: -5 } } }')).toMatch(/pool\.profiles\.a\.idleTimeout/);
    expect(problems('{ cull: { warnBefore: later } }')).toMatch(/pool\.cull\.warnBefore/);
  });
});
