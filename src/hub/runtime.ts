// Files the hub keeps under dataDir for the CLI and the gateway: where it listens, and its secrets (mode 0600).
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { replaceFile } from '../lib/atomic-file.js';
import { GATEWAY_SECRET_FILE } from '../protocol/gateway.js';

/** Relative to dataDir. */
export const RUNTIME_FILE = 'runtime.json';
/** Relative to dataDir: a fresh admin API token each hub start, for the CLI on this machine. */
export const ADMIN_TOKEN_FILE = 'secrets/admin-token';
/** Relative to dataDir: the pool-internal SSH key (gateway → instance hop); `.pub` beside it. */
export const SSH_INTERNAL_KEY_FILE = 'secrets/ssh-internal-key';
/** Relative to dataDir: the SSH front door's host key, created once so clients never see it change. */
export const SSH_HOST_KEY_FILE = 'secrets/ssh-host-key';
/** Relative to dataDir: the private key of the agent listener's TLS certificate (hub.agentAddress), 0600. */
export const AGENT_TLS_KEY_FILE = 'secrets/agent-tls.key';
/** Relative to dataDir: that certificate (self-signed, made once; agents pin its SHA-256 fingerprint). */
export const AGENT_TLS_CERT_FILE = 'agent-tls.crt';
/** Relative to dataDir: the SQLite store. */
export const STORE_FILE = 'dspool.sqlite';

/** What `runtime.json` holds while a hub runs. */
export interface RuntimeInfo {
  readonly hub_url: string;
  readonly pid: number;
  readonly started: string;
  readonly version: string;
}

/**
 * Writes a secret file with mode 0600 (its directory 0700).
 *
 * @example
 * writeSecretFile(join(config.dataDir, ADMIN_TOKEN_FILE), adminToken); // the file 0600, its folder 0700 when made here
 */
export function writeSecretFile(file: string, value: string): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  // Replaced whole: the admin token is new at every hub start, and the CLI may read it meanwhile.
  replaceFile(file, value, 0o600);
}

/**
 * Reads the gateway secret under dataDir, creating it on first use.
 *
 * @example
 * const secret = ensureGatewaySecret('/var/lib/dspool', () => newSecret());
 */
export function ensureGatewaySecret(dataDir: string, make: () => string): string {
  const file = join(dataDir, GATEWAY_SECRET_FILE);
  try {
    const existing = readFileSync(file, 'utf8').trim();
    if (existing) return existing;
  } catch {
    // first start: create it below
  }
  const secret = make();
  writeSecretFile(file, secret);
  return secret;
}

/**
 * Reads the pool-internal SSH key pair under dataDir, creating it on first use.
 *
 * @example
 * const { publicKey } = ensureSshInternalKey(dataDir, () => generateEd25519('dspool-internal'));
 */
export function ensureSshInternalKey(dataDir: string, make: () => { privateKey: string; publicKey: string }): { privateKey: string; publicKey: string } {
  const file = join(dataDir, SSH_INTERNAL_KEY_FILE);
  try {
    return { privateKey: readFileSync(file, 'utf8'), publicKey: readFileSync(`${file}.pub`, 'utf8').trim() };
  } catch {
    const pair = make();
    writeSecretFile(file, pair.privateKey);
    writeFileSync(`${file}.pub`, `${pair.publicKey.trim()}\n`, { mode: 0o644 });
    return pair;
  }
}

/** Relative to dataDir: where `dspool up`'s front door listens (written by `up`, read by `dspool ssh-config`). */
export const FRONT_DOOR_FILE = 'front-door.json';

/** What `front-door.json` holds. */
export interface FrontDoorInfo {
  readonly url: string;
  readonly ssh_port: number | null;
  readonly ssh_host_key: string | null;
  readonly pid: number;
}

/**
 * Writes `front-door.json` (mode 0644), so `dspool ssh-config` finds where `dspool up`'s front door listens.
 *
 * @example
 * writeFrontDoorInfo(config.dataDir, { url: 'http://127.0.0.1:8000', ssh_port: 2222, ssh_host_key: publicKey, pid: process.pid });
 */
export function writeFrontDoorInfo(dataDir: string, info: FrontDoorInfo): void {
  replaceFile(join(dataDir, FRONT_DOOR_FILE), `${JSON.stringify(info, null, 2)}\n`, 0o644);
}

/**
 * The front door's `front-door.json`, or undefined when none was written (or it cannot be read).
 *
 * @example
 * readFrontDoorInfo(config.dataDir)?.ssh_port; // 2222, or undefined when no `dspool up` wrote the file
 */
export function readFrontDoorInfo(dataDir: string): FrontDoorInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, FRONT_DOOR_FILE), 'utf8')) as FrontDoorInfo;
  } catch {
    return undefined;
  }
}

/**
 * Writes `runtime.json` (mode 0644), so the CLI on this machine finds the running hub.
 *
 * @example
 * writeRuntime(config.dataDir, { hub_url: url, pid: process.pid, started: new Date().toISOString(), version: '1.0.0' });
 */
export function writeRuntime(dataDir: string, info: RuntimeInfo): void {
  replaceFile(join(dataDir, RUNTIME_FILE), `${JSON.stringify(info, null, 2)}\n`, 0o644);
}

/**
 * The running hub's info, or undefined when none was written.
 *
 * @example
 * readRuntime('/var/lib/dspool')?.hub_url; // 'http://127.0.0.1:8081', or undefined when no hub wrote it
 */
export function readRuntime(dataDir: string): RuntimeInfo | undefined {
  try {
    return JSON.parse(readFileSync(join(dataDir, RUNTIME_FILE), 'utf8')) as RuntimeInfo;
  } catch {
    return undefined;
  }
}

/**
 * Removes `runtime.json` at shutdown, but only when it is still this process's (its `pid` is `pid`).
 *
 * @example
 * removeRuntime(config.dataDir, process.pid); // leaves the file alone when another hub wrote it since
 */
export function removeRuntime(dataDir: string, pid: number): void {
  if (readRuntime(dataDir)?.pid === pid) rmSync(join(dataDir, RUNTIME_FILE), { force: true });
}
