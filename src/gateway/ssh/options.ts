// Options of the SSH front door, the interfaces it is given (who may log in, where their instance is), and the
// one function that fills in defaults.
import { createLogger, type Logger } from '../../lib/log.js';

/**
 * The answer to a credential check: `allowed`; `denied` (the user exists but the credential is wrong, or the
 * user is disabled); `unknown` (no such user). The last two are both refused; they are logged differently.
 */
export type AuthVerdict = 'allowed' | 'denied' | 'unknown';

/**
 * The answer to a password check: a verdict, or refused unchecked by the hub's login limits: `busy` (too many
 * checks waiting) or `{ retryAfterMs }` (too many recent failures of this user from this address, or of this
 * address).
 */
export type PasswordVerdict = AuthVerdict | 'busy' | { readonly retryAfterMs: number };

/** Checks credentials against the hub's users. The front door never stores or forwards them. */
export interface SshAuthenticator {
  /**
   * Checks a password (the hub's password hash) from the client at `address`; the hub limits guessing per
   * (user, address) pair and per address, with the same limiter as the web login.
   */
  checkPassword(user: string, password: string, address: string): Promise<PasswordVerdict>;
  /**
   * Says whether a public key is registered for the user. `algo` is the key type (`ssh-ed25519`, `ssh-rsa`…),
   * `keyData` the key in SSH wire form (what `ssh-ed25519 <base64>` decodes to). The front door verifies the
   * client's signature itself.
   */
  checkPublicKey(user: string, algo: string, keyData: Buffer): Promise<AuthVerdict>;
}

/** Where a user's instance-side SSH server is. */
export interface SshTarget {
  host: string;
  port: number;
  /**
   * The instance server's public host key (`ssh-ed25519 AAAA…`); when given, any other key is refused.
   * @default not pinned (the hop runs on the pool's own network)
   */
  hostKey?: string;
}

/**
 * The user has no server, and the pool stopped their last one (idle, a drain deadline): a connection that is not
 * interactive does not start it again. `message` tells such a connection why and how to start it.
 */
export interface SshHeld {
  readonly held: string;
}

/** What the locator knows about the connection it locates for. */
export interface LocateOptions {
  /**
   * True once a channel of the connection asked for a terminal (an interactive login, `ssh -t`): the server is
   * started whatever stopped it. Absent at login, before the client said what it wants.
   * @default undefined (not known yet)
   */
  readonly interactive?: boolean;
}

/** Finds, or starts, the session a user's SSH connection goes to. */
export interface SessionLocator {
  /**
   * Resolves with the user's instance SSH server once it is ready. May take a while (the hub may start an
   * instance): call `onProgress` with short lines for the user, shown as the SSH banner (stderr). Resolves with
   * `SshHeld` instead when the pool stopped the user's server and `options.interactive` is not true. Reject with
   * `SshSessionUnavailableError` for a reason the user should read; `signal` aborts when the client goes away.
   */
  locate(user: string, onProgress: (message: string) => void, signal: AbortSignal, options?: LocateOptions): Promise<SshTarget | SshHeld>;
}

/**
 * Limits on the failures the front door sees itself and the hub never does (a key refused or badly signed, an
 * invalid user name); passwords are limited by the hub. Counted per (user, address) pair and per address, never
 * per user alone, so a stranger cannot lock a user out.
 */
export interface SshRateLimit {
  /**
   * Sliding window the failures are counted over, in milliseconds.
   * @default 300000 (5 minutes)
   */
  windowMs?: number;
  /**
   * Failures of one username from one address within the window.
   * @default 10
   */
  perPair?: number;
  /**
   * Failures per source address within the window.
   * @default 30
   */
  perAddress?: number;
}

export interface SshFrontDoorOptions {
  /** Checks passwords and keys. Required. */
  authenticator: SshAuthenticator;
  /** Finds each user's instance. Required. */
  locator: SessionLocator;
  /** Pool-internal private key (OpenSSH text); its public half is the only key instance servers accept. Required. */
  internalKey: string | Buffer;
  /** The gateway's host key, created (mode 0600) on first start and reused after. Required. */
  hostKeyFile: string;
  /**
   * Address to listen on.
   * @default '127.0.0.1'
   */
  host?: string;
  /**
   * TCP port; 0 picks a free one (read it from the handle).
   * @default 2222
   */
  port?: number;
  rateLimit?: SshRateLimit;
  /**
   * Subsystems relayed to the instance; any other is refused at the front door.
   * @default ['sftp']
   */
  subsystems?: readonly string[];
  /**
   * Authentication attempts per connection before it is dropped (like OpenSSH `MaxAuthTries`).
   * @default 6
   */
  maxAuthTries?: number;
  /**
   * Time a connection gets to authenticate, not counting the wait for its session, in milliseconds.
   * @default 120000
   */
  loginGraceMs?: number;
  /**
   * Longest wait for `locator.locate`, in milliseconds.
   * @default 300000
   */
  locateTimeoutMs?: number;
  /**
   * While waiting for a session: interval of keepalive packets to the client, in milliseconds.
   * @default 5000
   */
  waitKeepaliveMs?: number;
  /**
   * Longest wait for the instance hop's SSH handshake, in milliseconds.
   * @default 20000
   */
  instanceReadyTimeoutMs?: number;
  /**
   * Keepalive interval on both hops once connected, in milliseconds.
   * @default 15000
   */
  keepaliveIntervalMs?: number;
  /**
   * Unanswered keepalives before a hop is dropped.
   * @default 4
   */
  keepaliveCountMax?: number;
  /** @default createLogger('gateway-ssh') */
  log?: Logger;
}

export interface ResolvedSshFrontDoorOptions extends Required<Omit<SshFrontDoorOptions, 'rateLimit'>> {
  rateLimit: Required<SshRateLimit>;
}

/**
 * Fills in every default of `SshFrontDoorOptions`; the only place they live.
 *
 * @example
 * const opts = sshFrontDoorDefaults({ authenticator, locator, internalKey, hostKeyFile });
 * opts.port; // 2222
 * opts.rateLimit; // { windowMs: 300_000, perPair: 10, perAddress: 30 }
 */
export function sshFrontDoorDefaults(options: SshFrontDoorOptions): ResolvedSshFrontDoorOptions {
  return {
    authenticator: options.authenticator,
    locator: options.locator,
    internalKey: options.internalKey,
    hostKeyFile: options.hostKeyFile,
    host: options.host ?? '127.0.0.1',
    port: options.port ?? 2222,
    rateLimit: {
      windowMs: options.rateLimit?.windowMs ?? 300_000,
      perPair: options.rateLimit?.perPair ?? 10,
      perAddress: options.rateLimit?.perAddress ?? 30,
    },
    subsystems: options.subsystems ?? ['sftp'],
    maxAuthTries: options.maxAuthTries ?? 6,
    loginGraceMs: options.loginGraceMs ?? 120_000,
    locateTimeoutMs: options.locateTimeoutMs ?? 300_000,
    waitKeepaliveMs: options.waitKeepaliveMs ?? 5_000,
    instanceReadyTimeoutMs: options.instanceReadyTimeoutMs ?? 20_000,
    keepaliveIntervalMs: options.keepaliveIntervalMs ?? 15_000,
    keepaliveCountMax: options.keepaliveCountMax ?? 4,
    log: options.log ?? createLogger('gateway-ssh'),
  };
}
