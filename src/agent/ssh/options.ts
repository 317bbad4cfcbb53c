// Options of the instance-side SSH server and the one function that fills in their defaults.
import { createLogger, type Logger } from '../../lib/log.js';
import { generateEd25519 } from '../../ssh/keys.js';
import { DEFAULT_ACCEPT_ENV, DEFAULT_USER_PATH, type SshUser } from './env.js';

/** Looks up the account a pool user's sessions run as; `undefined` refuses the login. */
export type ResolveUser = (name: string) => SshUser | undefined | Promise<SshUser | undefined>;

export interface InstanceSshOptions {
  /** The pool-internal public key (`ssh-ed25519 AAAA…`), the only key this server accepts. Required. */
  internalPublicKey: string;
  /** Maps a pool username to its local account. Required. */
  resolveUser: ResolveUser;
  /**
   * Address to listen on: the instance address the gateway reaches.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * TCP port; 0 picks a free one (read it from the handle).
   * @default 0
   */
  port?: number;
  /**
   * Host private key in OpenSSH form.
   * @default a fresh ed25519 key per start
   */
  hostKey?: string;
  /**
   * Variable names a client may set (`*` suffix = prefix match); everything else is refused.
   * @default DEFAULT_ACCEPT_ENV (LANG, LANGUAGE, LC_*, TERM, COLORTERM, TZ, TERM_PROGRAM*, VSCODE_*, git author/committer names)
   */
  acceptEnv?: readonly string[];
  /**
   * `PATH` of a session unless `resolveUser` sets one.
   * @default DEFAULT_USER_PATH (Debian's user login PATH)
   */
  defaultPath?: string;
  /**
   * The `sftp` subsystem (and scp, which speaks SFTP since OpenSSH 9).
   * @default '/usr/lib/openssh/sftp-server'
   */
  sftpServerPath?: string;
  /**
   * Hosts `direct-tcpip` (`ssh -L`, VS Code's forwards) may reach. Anything else is refused.
   * @default [host, '127.0.0.1', 'localhost', '::1'] (the instance's address and its loopback; exact matches)
   */
  forwardHosts?: readonly string[];
  /**
   * Run sessions as the user's uid/gid. Only possible as root; otherwise sessions run as this process.
   * @default process.getuid() === 0
   */
  runAsUser?: boolean;
  /**
   * Interval between keepalive requests to the peer, in milliseconds.
   * @default 15000
   */
  keepaliveIntervalMs?: number;
  /**
   * Unanswered keepalives before the connection is dropped.
   * @default 4
   */
  keepaliveCountMax?: number;
  /**
   * After a session ends, how long its processes get between SIGHUP and SIGKILL, in milliseconds.
   * @default 2000
   */
  killGraceMs?: number;
  /** @default createLogger('agent-ssh') */
  log?: Logger;
}

export type ResolvedInstanceSshOptions = Required<InstanceSshOptions>;

/**
 * Fills in every default of `InstanceSshOptions`; the only place they live.
 *
 * @example
 * const opts = instanceSshDefaults({ internalPublicKey, resolveUser });
 * opts.host; // '127.0.0.1'
 * opts.keepaliveIntervalMs; // 15_000
 */
export function instanceSshDefaults(options: InstanceSshOptions): ResolvedInstanceSshOptions {
  const host = options.host ?? '127.0.0.1';
  return {
    internalPublicKey: options.internalPublicKey,
    resolveUser: options.resolveUser,
    host,
    port: options.port ?? 0,
    hostKey: options.hostKey ?? generateEd25519('dspool-instance').privateKey,
    acceptEnv: options.acceptEnv ?? DEFAULT_ACCEPT_ENV,
    defaultPath: options.defaultPath ?? DEFAULT_USER_PATH,
    sftpServerPath: options.sftpServerPath ?? '/usr/lib/openssh/sftp-server',
    forwardHosts: options.forwardHosts ?? [host, '127.0.0.1', 'localhost', '::1'],
    runAsUser: options.runAsUser ?? process.getuid?.() === 0,
    keepaliveIntervalMs: options.keepaliveIntervalMs ?? 15_000,
    keepaliveCountMax: options.keepaliveCountMax ?? 4,
    killGraceMs: options.killGraceMs ?? 2_000,
    log: options.log ?? createLogger('agent-ssh'),
  };
}
