import { createHmac, randomBytes } from 'node:crypto';
import { lstatSync, mkdtempSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { blockMarkers, upsertConfigBlock, upsertKnownHost, writeIfChanged } from './ssh-install.js';

const BLOCK = 'Host dspool\n  HostName 127.0.0.1\n  Port 2222';
const HOST = 'dspool-127.0.0.1-2222';
const KEY_A = `${HOST} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIAAAA`;
const KEY_B = `${HOST} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBBBB`;

describe('the Host block in ~/.ssh/config', () => {
  it('is appended after what is there, between markers, and a second run changes nothing', () => {
    const mine = 'Host work\n  User me\n';
    const first = upsertConfigBlock(mine, 'dspool', BLOCK);
    expect(first.change).toBe('added');
    expect(first.text.startsWith(`${mine}\n${blockMarkers('dspool').begin}\n${BLOCK}\n`)).toBe(true);
    const second = upsertConfigBlock(first.text, 'dspool', BLOCK);
    expect(second).toEqual({ text: first.text, change: 'unchanged' });
  });

  it('is replaced in place when it changed, keeping what comes before and after', () => {
    const first = upsertConfigBlock('Host a\n', 'dspool', BLOCK).text + 'Host z\n  User zed\n';
    const changed = upsertConfigBlock(first, 'dspool', BLOCK.replace('2222', '2223'));
    expect(changed.change).toBe('updated');
    expect(changed.text).toContain('Port 2223');
    expect(changed.text).not.toContain('Port 2222');
    expect(changed.text.startsWith('Host a\n')).toBe(true);
    expect(changed.text.endsWith('Host z\n  User zed\n')).toBe(true);
  });

  it('keeps one block per alias', () => {
    const both = upsertConfigBlock(upsertConfigBlock('', 'dspool', BLOCK).text, 'pool2', BLOCK.replace('dspool', 'pool2')).text;
    expect(upsertConfigBlock(both, 'dspool', BLOCK).change).toBe('unchanged');
    expect(both.match(/^Host /gm)?.length).toBe(2);
  });
});

describe('the pool\'s line in ~/.ssh/known_hosts', () => {
  it('is added once, and a second run changes nothing', () => {
    const others = 'github.com ssh-ed25519 AAAAother\n';
    const first = upsertKnownHost(others, HOST, KEY_A);
    expect(first).toEqual({ text: `${others}${KEY_A}\n`, change: 'added' });
    expect(upsertKnownHost(first.text, HOST, KEY_A).change).toBe('unchanged');
  });

  it('replaces the old key when the pool\'s key changed, also a hashed entry, and leaves other hosts alone', () => {
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(HOST).digest('base64')} ssh-ed25519 AAAAold`;
    const other = 'dspool-127.0.0.1-2222x,example.org ssh-rsa AAAAkeep';
    const updated = upsertKnownHost(`${hashed}\n${other}\n${KEY_A}\n`, HOST, KEY_B);
    expect(updated).toEqual({ text: `${other}\n${KEY_B}\n`, change: 'updated' });
  });

  it('never touches @cert-authority or @revoked lines', () => {
    const revoked = `@revoked ${HOST} ssh-ed25519 AAAAbad`;
    expect(upsertKnownHost(`${revoked}\n`, HOST, KEY_A).text).toBe(`${revoked}\n${KEY_A}\n`);
  });
});

describe('writing the files', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dspool-ssh-install-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('creates a new file 0600, keeps an existing file\'s mode, and writes through a symlink', () => {
    const fresh = join(dir, 'config');
    writeIfChanged(fresh, 'a\n', 0o600);
    expect(statSync(fresh).mode & 0o777).toBe(0o600);
    const shared = join(dir, 'known_hosts');
    writeFileSync(shared, 'x\n', { mode: 0o644 });
    writeIfChanged(shared, 'y\n', 0o600);
    expect(statSync(shared).mode & 0o777).toBe(0o644);
    const real = join(dir, 'dotfiles-config');
    writeFileSync(real, 'old\n');
    const link = join(dir, 'linked');
    symlinkSync(real, link);
    writeIfChanged(link, 'new\n', 0o600);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(readFileSync(real, 'utf8')).toBe('new\n');
  });

  it('does not write a file whose text is already right', () => {
    const file = join(dir, 'same');
    writeFileSync(file, 'same\n');
    const before = statSync(file).mtimeMs;
    writeIfChanged(file, 'same\n', 0o600);
    expect(statSync(file).mtimeMs).toBe(before);
  });
});
