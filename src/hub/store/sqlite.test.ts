import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { describeStoreConformance } from './conformance.js';
import { MIGRATIONS } from './migrations.js';
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

  it('seeds the UID counter from the users of a store made before it existed, so upgrading reuses no UID', async () => {
    const file = join(dir, 'before-counter.sqlite');
    const old = new Database(file);
    for (const sql of MIGRATIONS.slice(0, 5)) old.exec(sql);
    old.pragma('user_version = 5');
    const insert = old.prepare("INSERT INTO users (name, admin, uid, gid, created) VALUES (?, 0, ?, ?, 'then')");
    insert.run('alice', 20000, 20000);
    insert.run('bob', 20001, 20001);
    old.close();
    const store = openSqliteStore({ file });
    await store.deleteUser('bob');
    expect((await store.createUser({ name: 'carol', admin: false, passwordHash: null })).uid).toBe(20002);
    await store.close();
  });
});
