// Which environment variables an SSH client may set on the instance, and the environment a session starts with
// (the same one a Jupyter terminal gets: HOME, USER, LOGNAME, SHELL, PATH plus what the agent adds).

/**
 * Names a client may send with `env` requests (OpenSSH `SendEnv` / `SetEnv`). A trailing `*` matches any suffix.
 * Locale and terminal settings, the time zone, and what VS Code Remote-SSH and git send; nothing that changes
 * how programs are found or loaded (`PATH`, `LD_*`, `PYTHON*`, `BASH_ENV`…).
 */
export const DEFAULT_ACCEPT_ENV: readonly string[] = [
  'LANG',
  'LANGUAGE',
  'LC_*',
  'TERM',
  'COLORTERM',
  'TZ',
  'TERM_PROGRAM',
  'TERM_PROGRAM_VERSION',
  'VSCODE_*',
  'GIT_AUTHOR_NAME',
  'GIT_AUTHOR_EMAIL',
  'GIT_COMMITTER_NAME',
  'GIT_COMMITTER_EMAIL',
];

/** Debian's login PATH for ordinary users. */
export const DEFAULT_USER_PATH = '/usr/local/bin:/usr/bin:/bin:/usr/local/games:/usr/games';

const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * True when `name` is a valid variable name matched by one of `patterns`.
 *
 * @example
 * envAccepted('LC_ALL', DEFAULT_ACCEPT_ENV); // true
 * envAccepted('LD_PRELOAD', DEFAULT_ACCEPT_ENV); // false
 */
export function envAccepted(name: string, patterns: readonly string[]): boolean {
  if (!NAME.test(name)) return false;
  return patterns.some((p) => (p.endsWith('*') ? name.startsWith(p.slice(0, -1)) : name === p));
}

/** What `resolveUser` returns: the account a session runs as. */
export interface SshUser {
  /** Unix user id the session's processes run with (when the server runs as root). */
  uid: number;
  gid: number;
  /** `$HOME`, also the working directory. */
  home: string;
  /** Login shell, e.g. `/bin/bash`; commands run as `<shell> -c <command>`. */
  shell: string;
  /** Extra variables (what a Jupyter terminal gets from the agent); they override the defaults, not the basics. */
  env: Readonly<Record<string, string>>;
  /** Supplementary groups (the user's own and the pool's team group), when the server runs as root; absent: none. */
  groups?: readonly number[];
  /** `cgroup.procs` files of the user's session cgroup, joined before the shell runs; absent: no cgroup. */
  cgroupProcs?: readonly string[];
}

/**
 * The environment of one session: defaults, then the agent's `user.env`, then the client's accepted variables;
 * HOME, USER, LOGNAME and SHELL always describe the account.
 *
 * @example
 * sessionEnv('alice', user, DEFAULT_USER_PATH, { LANG: 'C.UTF-8' });
 */
export function sessionEnv(
  name: string,
  user: SshUser,
  defaultPath: string,
  fromClient: Readonly<Record<string, string>>,
): Record<string, string> {
  return {
    PATH: defaultPath,
    LANG: 'C.UTF-8',
    ...user.env,
    ...fromClient,
    HOME: user.home,
    USER: name,
    LOGNAME: name,
    SHELL: user.shell,
  };
}
