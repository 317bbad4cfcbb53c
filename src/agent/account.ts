// Local Unix accounts with exactly the hub-assigned UID/GID, created safely while other agents do the same.
//
// /etc/passwd and /etc/group are shared by every local instance on a machine, so several agents may add
// accounts at once: a lock error is retried, and an account that appeared meanwhile is re-checked, not refused.
import { execFile } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../lib/log.js';
import type { AgentUser } from '../protocol/agent.js';
import { AccountError } from './errors.js';

/** What `ensureAccount` needs from its caller. */
export interface AccountContext {
  readonly log: Logger;
  /** The pool's team group; every account is made a member. Absent: no team group. */
  readonly team?: { readonly name: string; readonly gid: number } | undefined;
}

interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(command, args, { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 127) : 0;
      resolve({ code, stdout, stderr: stderr || (error && typeof error.code !== 'number' ? error.message : '') });
    });
  });
}

/** An entry of /etc/passwd or /etc/group as `getent` prints it. */
interface Entry {
  name: string;
  id: number;
  gid?: number;
  /** Group members (group database only). */
  members?: string[];
}

async function getent(database: 'passwd' | 'group', key: string): Promise<Entry | undefined> {
  const result = await run('getent', [database, key]);
  if (result.code === 2) return undefined;
  if (result.code !== 0) throw new Error(`getent ${database} ${key} failed (${result.code}): ${result.stderr.trim()}`);
  const fields = result.stdout.trim().split('\n')[0]?.split(':') ?? [];
  const entry: Entry = { name: fields[0] ?? '', id: Number(fields[2]) };
  if (database === 'passwd') entry.gid = Number(fields[3]);
  else entry.members = (fields[3] ?? '').split(',').filter(Boolean);
  return entry;
}

/** useradd/groupadd report a busy /etc/passwd or /etc/group this way; another agent holds the lock. */
function isLockError(result: CommandResult): boolean {
  return /cannot lock|try again later|unable to lock/i.test(result.stderr);
}

const MAX_ATTEMPTS = 60;

/**
 * Makes sure a local account `user.name` exists with exactly `user.uid` and a group of the same name with
 * `user.gid`. An existing account with the same name and IDs is accepted (whatever its home); any mismatch
 * throws `AccountError`. Needs root.
 *
 * @example
 * await ensureAccount({ name: 'alice', uid: 20001, gid: 20001 }, '/scratch/home/alice', { log });
 */
export async function ensureAccount(user: AgentUser, home: string, ctx: AccountContext): Promise<void> {
  const fail = (reason: string, cause?: unknown): never => {
    throw new AccountError(user.name, reason, cause === undefined ? undefined : { cause });
  };
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    let group: Entry | undefined;
    let account: Entry | undefined;
    try {
      group = await getent('group', user.name);
      account = await getent('passwd', user.name);
    } catch (error) {
      fail((error as Error).message, error);
    }
    if (group && group.id !== user.gid) fail(`group "${user.name}" exists with GID ${group.id}, but the hub assigned GID ${user.gid}`);
    if (account && account.id !== user.uid) fail(`account exists with UID ${account.id}, but the hub assigned UID ${user.uid}`);
    if (account && account.gid !== user.gid) fail(`account exists with primary GID ${account.gid}, but the hub assigned GID ${user.gid}`);
    if (group && account) {
      if (ctx.team !== undefined) await ensureTeamMember(user.name, ctx.team.name, ctx.team.gid, ctx);
      return;
    }

    const result = group
      ? await run('useradd', ['-u', String(user.uid), '-g', String(user.gid), '-M', '-l', '-d', home, '-s', '/bin/bash', user.name])
      : await run('groupadd', ['-g', String(user.gid), user.name]);
    const what = group ? 'useradd' : 'groupadd';
    if (result.code === 0) {
      ctx.log.info({ user: user.name, uid: user.uid, gid: user.gid }, `${what}: created`);
      continue;
    }
    if (isLockError(result)) {
      await sleep(20 + Math.random() * 80 * Math.min(attempt, 10));
      continue;
    }
    // 9: the name appeared meanwhile (another agent won the race); re-check it on the next round.
    if (result.code === 9) continue;
    if (result.code === 4) {
      const holder = await getent(group ? 'passwd' : 'group', String(group ? user.uid : user.gid)).catch(() => undefined);
      // The ID went to this very name meanwhile (another agent won the race): re-check it on the next round.
      if (holder?.name === user.name) continue;
      fail(
        group
          ? `UID ${user.uid} is already used by account "${holder?.name ?? '?'}"`
          : `GID ${user.gid} is already used by group "${holder?.name ?? '?'}"`,
      );
    }
    fail(`${what} failed with exit code ${result.code}: ${result.stderr.trim()}`);
  }
  fail(`gave up after ${MAX_ATTEMPTS} attempts (/etc/passwd or /etc/group stayed locked)`);
}

/**
 * Makes sure the team group exists with `gid` and `name` is a member. A group of that name with another GID, or
 * that GID held by another group, throws `AccountError` (the instance's accounts do not match the hub's).
 */
async function ensureTeamMember(name: string, teamGroup: string, gid: number, ctx: AccountContext): Promise<void> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const group = await getent('group', teamGroup);
    if (group && group.id !== gid) throw new AccountError(name, `group "${teamGroup}" exists with GID ${group.id}, but the pool's team group is GID ${gid}`);
    if (group?.members?.includes(name)) return;
    const result = group ? await run('usermod', ['-a', '-G', teamGroup, name]) : await run('groupadd', ['-g', String(gid), teamGroup]);
    if (result.code === 0) {
      ctx.log.info({ user: name, group: teamGroup, gid }, group ? 'added to the team group' : 'team group created');
      continue;
    }
    if (isLockError(result) || result.code === 9) {
      await sleep(20 + Math.random() * 80 * Math.min(attempt, 10));
      continue;
    }
    if (!group && result.code === 4) {
      const holder = await getent('group', String(gid)).catch(() => undefined);
      if (holder?.name === teamGroup) continue;
      throw new AccountError(name, `GID ${gid} (the pool's team group) is already used by group "${holder?.name ?? '?'}"`);
    }
    throw new AccountError(name, `${group ? 'usermod' : 'groupadd'} for the team group failed with exit code ${result.code}: ${result.stderr.trim()}`);
  }
  throw new AccountError(name, `gave up adding to "${teamGroup}" after ${MAX_ATTEMPTS} attempts (/etc/group stayed locked)`);
}

/**
 * Removes a local account and its group; used by tests and cleanup. Missing accounts are fine.
 *
 * @example
 * await removeAccount('alice');
 */
export async function removeAccount(name: string): Promise<void> {
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const result = await run('userdel', [name]);
    if (result.code === 0 || result.code === 6) break;
    if (!isLockError(result)) throw new Error(`userdel ${name} failed (${result.code}): ${result.stderr.trim()}`);
    await sleep(20 + Math.random() * 80);
  }
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const result = await run('groupdel', [name]);
    if (result.code === 0 || result.code === 6) return;
    if (!isLockError(result)) throw new Error(`groupdel ${name} failed (${result.code}): ${result.stderr.trim()}`);
    await sleep(20 + Math.random() * 80);
  }
}
