// The gateway's SSH host key: generated once, written with mode 0600, reused on every start after.
import { mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync, closeSync, fsyncSync } from 'node:fs';
import { dirname } from 'node:path';
import { fingerprint, generateEd25519, parseSshKey, publicKeyLine } from '../../ssh/keys.js';
import { SshHostKeyError } from './errors.js';

/** A loaded host key. */
export interface HostKey {
  /** OpenSSH private key text, for ssh2's `hostKeys`. */
  privateKey: string;
  /** `ssh-ed25519 AAAA…`, for known_hosts lines (`dspool ssh-config`). */
  publicKey: string;
  /** `SHA256:…`, what OpenSSH shows on first connect. */
  fingerprint: string;
  /** True when this call created the file. */
  created: boolean;
}

/**
 * Reads the host key at `file`, or creates it (ed25519, mode 0600, parent directory 0700) when it does not exist.
 * A file that exists but does not parse is an error, never replaced.
 *
 * @throws SshHostKeyError when the file cannot be read, parsed or created.
 * @example
 * const key = loadOrCreateHostKey('/var/lib/dspool/secrets/ssh_host_ed25519_key');
 */
export function loadOrCreateHostKey(file: string): HostKey {
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw new SshHostKeyError(file, { cause: error });
  }
  let created = false;
  if (text === undefined) {
    const pair = generateEd25519('dspool-gateway');
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
      const fd = openSync(tmp, 'wx', 0o600);
      try {
        writeSync(fd, pair.privateKey);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      // Two gateways starting at once: the first rename wins and both read what is there after.
      renameSync(tmp, file);
      text = readFileSync(file, 'utf8');
      created = true;
    } catch (error) {
      rmSync(tmp, { force: true });
      throw new SshHostKeyError(file, { cause: error });
    }
  }
  const key = parseSshKey(text);
  if (key instanceof Error || !key.isPrivateKey()) throw new SshHostKeyError(file, { cause: key });
  return { privateKey: text, publicKey: publicKeyLine(key), fingerprint: fingerprint(key), created };
}
