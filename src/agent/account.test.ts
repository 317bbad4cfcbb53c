import { execFileSync } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/log.js';
import type { AgentUser } from '../protocol/agent.js';
import { ensureAccount, removeAccount } from './account.js';
import { AccountError } from './errors.js';
import { isRoot } from './host.js';
import { throwawayUser } from './testing.js';

const log = createLogger('account-test', 'silent');

function passwd(name: string): string {
  return execFileSync('getent', ['passwd', name], { encoding: 'utf8' }).trim();
}

describe.skipIf(!isRoot())('ensureAccount (needs root: it runs useradd)', () => {
  const users: AgentUser[] = [];
  function newUser(): AgentUser {
    const user = throwawayUser();
    users.push(user);
    return user;
  }

  afterAll(async () => {
    for (const user of users) await removeAccount(user.name).catch(() => undefined);
  });

  it('creates the account and its group with exactly the assigned UID and GID, and accepts it again', async () => {
    const user = newUser();
    await ensureAccount(user, `/nonexistent/home/${user.name}`, { log });
    expect(passwd(user.name)).toBe(`${user.name}:x:${user.uid}:${user.gid}::/nonexistent/home/${user.name}:/bin/bash`);
    expect(execFileSync('getent', ['group', user.name], { encoding: 'utf8' }).trim()).toBe(`${user.name}:x:${user.gid}:`);
    // Another instance with another scratch dir: same account, whatever its home.
    await ensureAccount(user, '/elsewhere', { log });
  });

  it('refuses an existing account whose UID differs from the hub\'s, as account_failed', async () => {
    const user = newUser();
    await ensureAccount(user, '/h', { log });
    const error = await ensureAccount({ ...user, uid: user.uid + 1 }, '/h', { log }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AccountError);
    expect((error as AccountError).code).toBe('account_failed');
    expect((error as Error).message).toMatch(new RegExp(`UID ${user.uid}.*UID ${user.uid + 1}`));
  });

  it('refuses a UID already held by another account, naming it', async () => {
    const holder = newUser();
    await ensureAccount(holder, '/h', { log });
    const other = newUser();
    const error = await ensureAccount({ ...other, uid: holder.uid }, '/h', { log }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AccountError);
    expect((error as Error).message).toContain(`used by account "${holder.name}"`);
  });

  it('lets several agents add accounts at once, retrying while /etc/passwd is locked', async () => {
    const batch = Array.from({ length: 8 }, () => newUser());
    // Every user twice, as two agents on the same machine would.
    await Promise.all([...batch, ...batch].map((user) => ensureAccount(user, `/h/${user.name}`, { log })));
    for (const user of batch) expect(passwd(user.name)).toContain(`:${user.uid}:${user.gid}:`);
  });
});
