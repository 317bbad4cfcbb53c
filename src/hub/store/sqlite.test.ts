import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeStoreConformance } from './conformance.js';
import { openSqliteStore } from './sqlite.js';

describeStoreConformance('sqlite', () => openSqliteStore({ file: ':memory:', uidBase: 30000 }));

describe('sqlite store file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dspool-store-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('keeps users across reopening and migrates only once', async () => {
    const file = join(dir, 'nested', 'dspool.sqlite');
    const first = openSqliteStore({ file });
    await first.createUser({ name: 'alice', admin: false, passwordHash: null });
    await first.close();
    const second = openSqliteStore({ file });
    expect((await second.getUser('alice'))?.uid).toBe(20000);
    await second.close();
  });
});
