import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SshHostKeyError } from './errors.js';
import { loadOrCreateHostKey } from './host-key.js';

describe('loadOrCreateHostKey', () => {
  const dirs: string[] = [];
  const dir = (): string => {
    const d = mkdtempSync(join(tmpdir(), 'dspool-hostkey-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('creates an ed25519 key with mode 0600 once and returns the same key after a restart', () => {
    const file = join(dir(), 'secrets', 'ssh_host_ed25519_key');
    const first = loadOrCreateHostKey(file);
    expect(first.created).toBe(true);
    expect(first.publicKey).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+/);
    expect(first.fingerprint).toMatch(/^SHA256:/);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const again = loadOrCreateHostKey(file);
    expect(again.created).toBe(false);
    expect(again.publicKey).toBe(first.publicKey);
  });

  it('refuses a file that is not a private key instead of replacing it', () => {
    const file = join(dir(), 'key');
    writeFileSync(file, 'not a key');
    chmodSync(file, 0o600);
    expect(() => loadOrCreateHostKey(file)).toThrow(SshHostKeyError);
  });
});
