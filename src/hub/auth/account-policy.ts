// What the hub accepts as a new account name and as a password, checked when a user is added or a password set,
// so that a bad choice is refused at once (400 naming the reason) instead of failing later at the first start.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { BadRequestError } from '../errors.js';

/** Options of the account policy. */
export interface AccountPolicyOptions {
  /** First UID (and GID) the pool assigns: a system account or group below it may not become a pool user. */
  readonly uidBase: number;
  /**
   * Shortest password accepted, in characters.
   * @default 8
   */
  readonly passwordMinLength?: number;
  /**
   * Finds an existing account and group of this name on the hub's machine (where the local provider's instances
   * run). Returns the IDs found, `undefined` fields for none.
   * @default `lookupSystemAccount` (getent, else /etc/passwd and /etc/group)
   */
  readonly lookup?: (name: string) => Promise<SystemAccount>;
  /**
   * Look up this machine's accounts at all. Only a pool run as root makes Unix accounts here (its local instances
   * run servers as them); without root everything runs as the invoking user, who may well add themself by name.
   * @default true
   */
  readonly checkSystemAccounts?: boolean;
  /**
   * Further names no user may take, besides `RESERVED_NAMES` (the pool's team group, `users.teamGroup`).
   * @default []
   */
  readonly reservedNames?: readonly string[];
}

/** An account and group of one name on this machine; a field is `undefined` when there is none. */
export interface SystemAccount {
  readonly uid: number | undefined;
  readonly gid: number | undefined;
}

/** The account policy with every default filled in. */
export interface AccountPolicy {
  readonly uidBase: number;
  readonly passwordMinLength: number;
  readonly lookup: (name: string) => Promise<SystemAccount>;
  readonly checkSystemAccounts: boolean;
  readonly reservedNames: ReadonlySet<string>;
}

/** Default shortest password, in characters (pool.yaml `users.passwordMinLength`). */
export const DEFAULT_PASSWORD_MIN_LENGTH = 8;

/**
 * Fills in the policy's defaults (the one place they are set).
 *
 * @example
 * const policy = accountPolicy({ uidBase: 20000 }); // passwordMinLength 8, lookup through getent
 */
export function accountPolicy(options: AccountPolicyOptions): AccountPolicy {
  return {
    uidBase: options.uidBase,
    passwordMinLength: options.passwordMinLength ?? DEFAULT_PASSWORD_MIN_LENGTH,
    lookup: options.lookup ?? lookupSystemAccount,
    checkSystemAccounts: options.checkSystemAccounts ?? true,
    reservedNames: new Set(options.reservedNames ?? []),
  };
}

/**
 * Names of accounts and groups that exist on (nearly) every Linux system or that the pool itself uses. They are
 * refused even when the hub's own machine lacks them, as instances elsewhere (static hosts, Slurm nodes) may have them.
 */
export const RESERVED_NAMES: ReadonlySet<string> = new Set([
  'root', 'daemon', 'bin', 'sys', 'sync', 'games', 'man', 'lp', 'mail', 'news', 'uucp', 'proxy', 'www-data', 'backup',
  'list', 'irc', 'gnats', 'nobody', 'nogroup', 'adm', 'tty', 'disk', 'kmem', 'dialout', 'fax', 'voice', 'cdrom',
  'floppy', 'tape', 'sudo', 'audio', 'dip', 'operator', 'src', 'shadow', 'utmp', 'video', 'sasl', 'plugdev', 'staff',
  'users', 'wheel', 'admin', 'messagebus', 'sshd', 'postfix', 'postgres', 'mysql', 'docker', 'munge', 'slurm',
  'systemd-network', 'systemd-resolve', 'systemd-timesync', 'systemd-journal', 'systemd-coredump', 'polkitd',
  'dspool', 'dspool-team',
]);

/**
 * The most common passwords (from published breach top lists), refused whatever the length setting says.
 * Compared without regard to case.
 */
export const COMMON_PASSWORDS: ReadonlySet<string> = new Set([
  '123456', '123456789', '12345678', '12345', '1234567', '1234567890', '123123', '111111', '000000', '654321',
  '666666', '121212', '112233', '123321', '159753', '987654321', '11111111', '00000000', '12341234', '88888888',
  '87654321', '147258369', '1q2w3e4r', '1q2w3e4r5t', '1qaz2wsx', 'zaq12wsx', 'qwerty', 'qwerty123', 'qwertyuiop',
  'qwerty1', 'asdfghjk', 'asdfghjkl', 'asdf1234', 'zxcvbnm', 'zxcvbnm1', 'password', 'password1', 'password12',
  'password123', 'passw0rd', 'p@ssw0rd', 'p@ssword', 'pa55word', 'letmein', 'letmein1', 'welcome', 'welcome1',
  'welcome123', 'iloveyou', 'iloveyou1', 'sunshine', 'princess', 'football', 'baseball', 'basketball', 'superman',
  'batman', 'starwars', 'monkey', 'dragon', 'master', 'shadow', 'michael', 'jennifer', 'trustno1', 'abc123',
  'abcd1234', 'abcdefg', 'abcdefgh', 'admin', 'admin123', 'administrator', 'changeme', 'changeit', 'default',
  'secret', 'secret123', 'login', 'guest', 'root', 'toor', 'test', 'test1234', 'testtest', 'computer', 'internet',
  'whatever', 'freedom', 'hello123', 'helloworld', 'charlie', 'jordan23', 'liverpool', 'chelsea', 'soccer', 'hockey',
  'mustang', 'access', 'access14', 'flower', 'cookie', 'ashley', 'bailey', 'qazwsx', 'aaaaaaaa', 'q1w2e3r4', 'q1w2e3r4t5',
  'jupyter', 'jupyter123', 'notebook', 'dspool', 'dspool123',
]);

/**
 * Says why `password` is refused, or `undefined` when it is acceptable: shorter than the minimum, one of the most
 * common passwords, or the username itself.
 *
 * @example
 * passwordProblem('pw', 'alice', 8);            // 'is 2 characters long; at least 8 are needed'
 * passwordProblem('password1', 'alice', 8);     // 'is one of the most common passwords; choose another'
 * passwordProblem('a-good-password', 'alice', 8); // undefined
 */
export function passwordProblem(password: string, user: string, minLength: number): string | undefined {
  const length = [...password].length;
  if (length < minLength) return `is ${length} character${length === 1 ? '' : 's'} long; at least ${minLength} are needed`;
  const lower = password.toLowerCase();
  if (COMMON_PASSWORDS.has(lower)) return 'is one of the most common passwords; choose another';
  if (lower === user.toLowerCase()) return 'is the username; choose another';
  return undefined;
}

/**
 * Says why `name` may not become a pool account, or `undefined` when it may: a reserved system name, or (when
 * `checkSystemAccounts`) an account or group of that name already on this machine with an ID below `uidBase`
 * (outside the pool's range). An account
 * in the pool's range is accepted (it may be this pool's from before, with the same UID).
 *
 * @example
 * await accountNameProblem('root', policy); // 'is a system account (root); pool users are new accounts …'
 */
export async function accountNameProblem(name: string, policy: AccountPolicy): Promise<string | undefined> {
  const range = `the pool's UIDs start at ${policy.uidBase} (users.uidBase)`;
  if (policy.reservedNames.has(name)) return `is the pool's team group (users.teamGroup); pool users need a name of their own`;
  if (RESERVED_NAMES.has(name)) return `is a system account or group name; pool users need a name of their own (${range})`;
  if (!policy.checkSystemAccounts) return undefined;
  const found = await policy.lookup(name);
  if (found.uid !== undefined && found.uid < policy.uidBase) {
    return `is an existing system account (UID ${found.uid}) outside the pool's UID range (${range})`;
  }
  if (found.gid !== undefined && found.gid < policy.uidBase) {
    return `is an existing system group (GID ${found.gid}) outside the pool's UID range (${range})`;
  }
  return undefined;
}

/**
 * Throws `BadRequestError` (field `name`) when `name` may not become a pool account.
 *
 * @example
 * await checkAccountName('alice', policy);
 */
export async function checkAccountName(name: string, policy: AccountPolicy): Promise<void> {
  const problem = await accountNameProblem(name, policy);
  if (problem) throw new BadRequestError(`username "${name}" ${problem}`, 'name');
}

/**
 * Throws `BadRequestError` (field `password`) when `password` is refused for `user`.
 *
 * @example
 * checkPassword('a-good-password', 'alice', policy);
 */
export function checkPassword(password: string, user: string, policy: AccountPolicy): void {
  const problem = passwordProblem(password, user, policy.passwordMinLength);
  if (problem) throw new BadRequestError(`password: it ${problem}`, 'password');
}

/**
 * The UID of the account and the GID of the group named `name` on this machine, through `getent` (so LDAP and
 * other NSS sources count); without `getent`, from /etc/passwd and /etc/group.
 *
 * @example
 * await lookupSystemAccount('root'); // { uid: 0, gid: 0 }
 */
export async function lookupSystemAccount(name: string): Promise<SystemAccount> {
  const [uid, gid] = await Promise.all([getentId('passwd', name), getentId('group', name)]);
  return { uid, gid };
}

function getentId(database: 'passwd' | 'group', name: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    execFile('getent', [database, name], { encoding: 'utf8', timeout: 5_000 }, (error, stdout) => {
      if (!error) return resolve(idField(stdout));
      // 2: no such entry. ENOENT (no getent): read the files.
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return resolve(fromFile(database, name));
      resolve(error.code === 2 ? undefined : fromFile(database, name));
    });
  });
}

function idField(line: string): number | undefined {
  const id = Number(line.split('\n')[0]?.split(':')[2]);
  return Number.isInteger(id) ? id : undefined;
}

function fromFile(database: 'passwd' | 'group', name: string): number | undefined {
  try {
    const line = readFileSync(`/etc/${database}`, 'utf8').split('\n').find((l) => l.startsWith(`${name}:`));
    return line === undefined ? undefined : idField(line);
  } catch {
    return undefined;
  }
}
