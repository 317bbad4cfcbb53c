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

describe('pool.yaml pool section', () => {
  it('fills in placement, capacity, repair and drain defaults', () => {
    const { pool } = parse('{}');
    expect(pool).toMatchObject({
      instances: 2, placement: 'spread', capacity: { maxSessions: null }, profiles: {}, defaultProfile: null, gpuCommand: 'nvidia-smi',
      repair: { missedHeartbeats: 3, failAfter: 30_000, maxShare: 0.34 }, drain: { deadline: 3_600_000 },
    });
  });

  it('parses profiles with sizes written for people', () => {
    const { pool } = parse('{ placement: pack, profiles: { gpu: { cpu: 2, memory: 4Gi, gpus: 1 } }, defaultProfile: gpu }');
    expect(pool.profiles.gpu).toEqual({ cpu: 2, memory: 4 * 2 ** 30, gpus: 1 });
    expect(pool.placement).toBe('pack');
  });

  it('refuses a negative or absurd capacity, naming the key', () => {
    expect(problems('{ capacity: { cpus: -2 } }')).toMatch(/pool\.capacity\.cpus.*(negative|more than 0)/);
    expect(problems('{ capacity: { memory: 900Ti } }')).toMatch(/pool\.capacity\.memory.*64 TiB/);
    expect(problems('{ capacity: { gpus: 1000 } }')).toMatch(/pool\.capacity\.gpus.*at most 64/);
    expect(problems('{ capacity: { maxSessions: 0 } }')).toMatch(/pool\.capacity\.maxSessions.*at least 1/);
    expect(problems('{ profiles: { big: { memory: -1 } } }')).toMatch(/pool\.profiles\.big\.memory/);
  });

  it('refuses a default profile that does not exist and a repair share above the whole pool', () => {
    expect(problems('{ defaultProfile: gpu }')).toMatch(/pool\.defaultProfile.*no profile named "gpu"/);
    expect(problems('{ repair: { maxShare: 3 } }')).toMatch(/pool\.repair\.maxShare/);
  });
});
