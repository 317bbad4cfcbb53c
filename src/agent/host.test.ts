import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { detectGpus, parseGpuList } from './host.js';

describe('GPU detection', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dspool-gpu-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('parses nvidia-smi csv output, GPU names with commas included', () => {
    expect(parseGpuList('0, NVIDIA H100 80GB HBM3, 81559 MiB\n1, Tesla T4, rev 2, 15360 MiB\nnot a gpu\n')).toEqual([
      { index: 0, name: 'NVIDIA H100 80GB HBM3', memoryBytes: 81559 * 2 ** 20 },
      { index: 1, name: 'Tesla T4, rev 2', memoryBytes: 15360 * 2 ** 20 },
    ]);
  });

  it('runs the configured nvidia-smi with the query flags', async () => {
    const fake = join(dir, 'nvidia-smi');
    writeFileSync(fake, '#!/bin/sh\n[ "$1" = "--query-gpu=index,name,memory.total" ] && [ "$2" = "--format=csv,noheader" ] || exit 9\necho "0, Fake GPU, 1024 MiB"\n');
    chmodSync(fake, 0o755);
    expect(await detectGpus(fake, '/usr/bin:/bin')).toEqual([{ index: 0, name: 'Fake GPU', memoryBytes: 2 ** 30 }]);
  });

  it('reports no GPUs when nvidia-smi is missing, fails, or detection is off', async () => {
    const failing = join(dir, 'broken-smi');
    writeFileSync(failing, '#!/bin/sh\nexit 1\n');
    chmodSync(failing, 0o755);
    expect(await detectGpus(join(dir, 'absent'), '/usr/bin:/bin')).toEqual([]);
    expect(await detectGpus(failing, '/usr/bin:/bin')).toEqual([]);
    expect(await detectGpus(null, '/usr/bin:/bin')).toEqual([]);
  });
});
