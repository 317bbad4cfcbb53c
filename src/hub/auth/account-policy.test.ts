import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { accountNameProblem, accountPolicy, checkAccountName, checkPassword, lookupSystemAccount, passwordProblem } from './account-policy.js';
import { BadRequestError } from '../errors.js';

const etc = (file: string) => {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return '';
  }
};
const hasApt = /^_apt:[^:]*:42:/m.test(etc('/etc/passwd'));
const sslCertGid = Number(/^ssl-cert:[^:]*:(\d+):/m.exec(etc('/etc/group'))?.[1] ?? NaN);

describe('passwords', () => {
  it('refuses one shorter than the minimum, saying how long it is and what is needed', () => {
    expect(passwordProblem('x', 'alice', 8)).toBe('is 1 character long; at least 8 are needed');
    expect(passwordProblem('seven77', 'alice', 8)).toBe('is 7 characters long; at least 8 are needed');
    expect(passwordProblem('seven77', 'alice', 6)).toBeUndefined();
  });

  it('counts characters, not bytes', () => {
    expect(passwordProblem('ééééééé', 'alice', 8)).toMatch(/is 7 characters long/);
  });

  it('refuses the most common passwords whatever their case, and the username itself', () => {
    expect(passwordProblem('password1', 'alice', 8)).toMatch(/most common passwords/);
    expect(passwordProblem('PassWord123', 'alice', 8)).toMatch(/most common passwords/);
    expect(passwordProblem('12345678', 'alice', 1)).toMatch(/most common passwords/);
    expect(passwordProblem('alice-long-name', 'alice-long-name', 8)).toMatch(/is the username/);
    expect(passwordProblem('a-good-password', 'alice', 8)).toBeUndefined();
  });

  it('throws a 400 naming the password field', () => {
    const policy = accountPolicy({ uidBase: 20000 });
    expect(policy.passwordMinLength).toBe(8);
    try {
      checkPassword('short', 'alice', policy);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(BadRequestError);
      expect((error as BadRequestError).field).toBe('password');
      expect((error as Error).message).toBe('password: it is 5 characters long; at least 8 are needed');
    }
  });
});

describe('account names', () => {
  const none = async () => ({ uid: undefined, gid: undefined });

  it('refuses reserved system names even where this machine has no such account', async () => {
    const policy = accountPolicy({ uidBase: 20000, lookup: none });
    for (const name of ['root', 'nobody', 'sudo', 'www-data', 'dspool-team']) {
      expect(await accountNameProblem(name, policy), name).toMatch(/system account or group name.*start at 20000/);
    }
  });

  it('refuses the pool\'s own team group name', async () => {
    const policy = accountPolicy({ uidBase: 20000, lookup: none, reservedNames: ['science-team'] });
    expect(await accountNameProblem('science-team', policy)).toMatch(/the pool's team group \(users.teamGroup\)/);
    expect(await accountNameProblem('science', policy)).toBeUndefined();
  });

  it('refuses an existing account or group below the pool\'s UID range, and accepts one inside it', async () => {
    const policy = (uid: number | undefined, gid: number | undefined) => accountPolicy({ uidBase: 20000, lookup: async () => ({ uid, gid }) });
    expect(await accountNameProblem('carol', policy(1000, 1000))).toMatch(/existing system account \(UID 1000\) outside the pool's UID range/);
    expect(await accountNameProblem('carol', policy(undefined, 50))).toMatch(/existing system group \(GID 50\)/);
    expect(await accountNameProblem('carol', policy(20004, 20004))).toBeUndefined();
    expect(await accountNameProblem('carol', policy(undefined, undefined))).toBeUndefined();
  });

  it('leaves this machine\'s accounts alone when the pool makes none (not run as root), but still refuses reserved names', async () => {
    const policy = accountPolicy({ uidBase: 20000, checkSystemAccounts: false, lookup: async () => ({ uid: 1000, gid: 1000 }) });
    expect(await accountNameProblem('carol', policy)).toBeUndefined();
    expect(await accountNameProblem('root', policy)).toMatch(/system account or group name/);
  });

  it('finds real accounts and groups of this machine through getent', async () => {
    expect(await lookupSystemAccount('root')).toEqual({ uid: 0, gid: 0 });
    expect(await lookupSystemAccount('no-such-account-here')).toEqual({ uid: undefined, gid: undefined });
  });

  it.skipIf(!hasApt)('refuses a system account of this machine that is not on the reserved list (_apt, UID 42)', async () => {
    expect(await accountNameProblem('_apt', accountPolicy({ uidBase: 20000 }))).toMatch(/UID 42/);
  });

  it.skipIf(Number.isNaN(sslCertGid))('refuses a system group of this machine (ssl-cert)', async () => {
    await expect(checkAccountName('ssl-cert', accountPolicy({ uidBase: 20000 }))).rejects.toThrow(`username "ssl-cert" is an existing system group (GID ${sslCertGid})`);
  });
});
