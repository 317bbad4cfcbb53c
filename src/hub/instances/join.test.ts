import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../lib/log.js';
import type { InstanceSpec } from '../../providers/provider.js';
import { StaticProvider } from '../../providers/static/index.js';
import { hashSecret } from '../auth/credentials.js';
import { EventLog } from '../events.js';
import { openSqliteStore } from '../store/sqlite.js';
import type { Store } from '../store/types.js';
import { JoinService } from './join.js';

const HOST = '198.18.200.5';
const OTHER = '198.18.200.9';

describe('join tokens', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dspool-join-'));
  const file = join(dir, 'state', 'dspool.sqlite');
  const log = createLogger('join-test', 'silent');
  const provider = new StaticProvider({ stateDir: join(dir, 'static'), hosts: [HOST, OTHER], log });
  const opened: Store[] = [];
  /** A hub's join service on the store file, as a (re)started hub builds it. */
  const hub = (): { joins: JoinService; store: Store } => {
    const store = openSqliteStore({ file });
    opened.push(store);
    return { joins: new JoinService({ provider, store, events: new EventLog(store, log), log }), store };
  };
  const slot = async (id: string): Promise<void> => {
    await provider.create({ id, hubUrl: 'http://127.0.0.1:1', joinToken: `instance-${id}-0123456789`, settings: {} as InstanceSpec['settings'] });
  };
  afterAll(async () => {
    for (const store of opened) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps a join token issued before a hub restart: it works after it, once, and only its hash is stored', async () => {
    const before = hub();
    const { token } = await before.joins.issue(60_000);
    await before.store.close();
    const raw = new Database(file, { readonly: true });
    const rows = raw.prepare('SELECT * FROM join_tokens').all();
    raw.close();
    expect(JSON.stringify(rows)).not.toContain(token);
    expect(rows).toContainEqual(expect.objectContaining({ hash: hashSecret(token) }));

    const after = hub();
    await slot('i-restart');
    const reply = await after.joins.join({ token }, `::ffff:${HOST}`);
    expect(reply.status, JSON.stringify(reply.body)).toBe(200);
    expect(reply.body).toMatchObject({ instanceId: 'i-restart', address: HOST });
    expect((reply.body as { hostCredential?: string }).hostCredential).toMatch(/^dsph_/);

    const again = await after.joins.join({ token }, HOST);
    expect(again).toEqual({ status: 401, body: { code: 'join_token_invalid', message: expect.stringMatching(/wrong, already used or expired/) } });
    await after.store.close();
    const third = hub();
    expect((await third.joins.join({ token }, HOST)).status).toBe(401);
    await third.store.close();
  });

  it('refuses a wrong token and one that expired while the hub was down', async () => {
    const before = hub();
    const { token } = await before.joins.issue(50);
    await before.store.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const after = hub();
    const expired = await after.joins.join({ token }, HOST);
    expect(expired.status).toBe(401);
    expect((expired.body as { code: string }).code).toBe('join_token_invalid');
    const wrong = await after.joins.join({ token: 'dspj_not-a-real-token-at-all' }, HOST);
    expect(wrong.status).toBe(401);
    expect(JSON.stringify(await after.store.listEvents({ limit: 10 }))).not.toContain(token);
    await after.store.close();
  });

  it('hands one token to only one of two machines joining at the same moment', async () => {
    const { joins, store } = hub();
    await slot('i-race');
    const { token } = await joins.issue(60_000);
    const replies = await Promise.all([joins.join({ token }, OTHER), joins.join({ token }, OTHER)]);
    expect(replies.map((r) => r.status).sort()).toEqual([200, 401]);
    await store.close();
  });
});
