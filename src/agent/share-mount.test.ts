import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { ShareMountSettings } from '../protocol/agent.js';
import { ShareCredentialsError } from './errors.js';
import { checkRootOnlyFile, isTheShare, knownHostsLine, mountAt, mountCommand, parseMountinfo, probeCommand, runCommand, unmountCommand } from './share-mount.js';

const ctx = { knownHostsFile: '/var/lib/dspool-agent/i/i-1/share-known_hosts' };
const isRoot = process.getuid?.() === 0;

describe('the mount command the agent builds', () => {
  it('mounts NFS with mount -t nfs and the operator\'s options', () => {
    const nfs: ShareMountSettings = { type: 'nfs', source: 'files.example:/export/share', options: ['vers=4.2', 'hard'], timeoutMs: 60_000 };
    const command = mountCommand(nfs, '/srv/share', ctx);
    expect([command.file, ...command.args]).toEqual(['mount', '-t', 'nfs', '-o', 'vers=4.2,hard', 'files.example:/export/share', '/srv/share']);
    expect(mountCommand({ ...nfs, options: [] }, '/srv/share', ctx).args).toEqual(['-t', 'nfs', 'files.example:/export/share', '/srv/share']);
  });

  it('mounts CIFS (Azure Files) with credentials=<file>: the file\'s path, never a password, in argv and environment', () => {
    const cifs: ShareMountSettings = {
      type: 'cifs', source: '//acct.file.core.windows.net/share', credentialsFile: '/etc/dspool/smb.cred', options: ['vers=3.1.1', 'serverino'], timeoutMs: 60_000,
    };
    const command = mountCommand(cifs, '/srv/share', ctx);
    expect([command.file, ...command.args]).toEqual([
      'mount', '-t', 'cifs', '-o', 'credentials=/etc/dspool/smb.cred,vers=3.1.1,serverino', '//acct.file.core.windows.net/share', '/srv/share',
    ]);
    expect(JSON.stringify(command)).not.toMatch(/password|username/);
    expect(Object.keys(command.env).sort()).toEqual(['LANG', 'PATH']);
  });

  it('mounts sshfs with the identity file, the pinned host key only, no prompts, keepalives and allow_other', () => {
    const sshfs: ShareMountSettings = {
      type: 'sshfs', source: 'share@files.example:/srv/share', port: 2200, identityFile: '/etc/dspool/share_key', hostKey: 'ssh-ed25519 AAAAC3Nza', options: ['cache=no'], timeoutMs: 60_000,
    };
    const command = mountCommand(sshfs, '/srv/share', ctx);
    expect(command.file).toBe('sshfs');
    expect(command.args.slice(0, 6)).toEqual(['share@files.example:/srv/share', '/srv/share', '-F', '/dev/null', '-p', '2200']);
    const options = (command.args[7] ?? '').split(',');
    expect(command.args[6]).toBe('-o');
    expect(options).toEqual([
      'allow_other', 'IdentityFile=/etc/dspool/share_key', 'IdentitiesOnly=yes', `UserKnownHostsFile=${ctx.knownHostsFile}`, 'GlobalKnownHostsFile=/dev/null',
      'HostKeyAlias=dspool-share', 'StrictHostKeyChecking=yes', 'BatchMode=yes', 'PasswordAuthentication=no', 'ConnectTimeout=10',
      'ServerAliveInterval=5', 'ServerAliveCountMax=3', 'cache=no',
    ]);
    // An sshfs that refuses absolute symlinks by default is told not to: $HOME/notebooks/remote is one.
    expect(mountCommand(sshfs, '/srv/share', { ...ctx, sshfsContainsSymlinks: true }).args.at(-1)).toMatch(/,no_contain_symlinks,cache=no$/);
    expect(knownHostsLine('ssh-ed25519 AAAAC3Nza')).toBe('dspool-share ssh-ed25519 AAAAC3Nza\n');
  });

  it('runs a command of the operator\'s with the path, source, credentials file and options in its environment', () => {
    const command = mountCommand(
      { type: 'command', command: ['/usr/local/sbin/mount-share', '--fast'], source: 'bucket', credentialsFile: '/etc/dspool/cred', options: ['ro', 'x=1'], timeoutMs: 60_000 },
      '/srv/share', ctx,
    );
    expect([command.file, ...command.args]).toEqual(['/usr/local/sbin/mount-share', '--fast']);
    expect(command.env).toMatchObject({ DSPOOL_SHARE_PATH: '/srv/share', DSPOOL_SHARE_SOURCE: 'bucket', DSPOOL_SHARE_CREDENTIALS: '/etc/dspool/cred', DSPOOL_SHARE_OPTIONS: 'ro,x=1' });
  });

  it('detaches a stale share lazily without resolving its path', () => {
    expect([unmountCommand('/srv/share').file, ...unmountCommand('/srv/share').args]).toEqual(['umount', '-l', '-c', '/srv/share']);
  });
});

describe('what is mounted where', () => {
  const mountinfo = [
    '22 1 0:21 / /proc rw,nosuid - proc proc rw',
    '36 25 0:45 / /srv/share rw,relatime shared:1 - fuse.sshfs share@files:/srv/share rw,user_id=0',
    '37 25 0:46 / /srv/my\\040share rw - nfs4 files:/export/ rw,vers=4.2',
    '38 25 0:47 / /srv/share rw - cifs //acct.file.core.windows.net/share rw',
    'garbage',
  ].join('\n');

  it('parses /proc/self/mountinfo, escaped spaces included, and finds the mount on top at a path', () => {
    const entries = parseMountinfo(mountinfo);
    expect(entries).toHaveLength(4);
    expect(mountAt(entries, '/srv/my share')).toEqual({ mountPoint: '/srv/my share', fsType: 'nfs4', source: 'files:/export/' });
    expect(mountAt(entries, '/srv/share/')?.fsType).toBe('cifs');
    expect(mountAt(entries, '/srv')).toBeUndefined();
  });

  it('recognises the configured share by its kind and source, trailing slashes aside', () => {
    const [, sshfs, nfs, cifs] = parseMountinfo(mountinfo) as [never, NonNullable<ReturnType<typeof mountAt>>, NonNullable<ReturnType<typeof mountAt>>, NonNullable<ReturnType<typeof mountAt>>];
    const base = { options: [], timeoutMs: 1 };
    expect(isTheShare(sshfs, { ...base, type: 'sshfs', source: 'share@files:/srv/share', port: 22, identityFile: '/k', hostKey: 'k' })).toBe(true);
    expect(isTheShare(sshfs, { ...base, type: 'sshfs', source: 'other@files:/srv/share', port: 22, identityFile: '/k', hostKey: 'k' })).toBe(false);
    expect(isTheShare(nfs, { ...base, type: 'nfs', source: 'files:/export' })).toBe(true);
    expect(isTheShare(nfs, { ...base, type: 'cifs', source: 'files:/export' })).toBe(false);
    expect(isTheShare(cifs, { ...base, type: 'cifs', source: '//acct.file.core.windows.net/share' })).toBe(true);
    expect(isTheShare(cifs, { ...base, type: 'command', command: ['x'] })).toBe(true);
    expect(isTheShare(cifs, { ...base, type: 'command', command: ['x'], source: 'bucket' })).toBe(false);
  });
});

describe('credentials files and commands with a deadline', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dspool-share-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.skipIf(!isRoot)('accepts only a root-owned file without group or other permissions, naming the field and never the content', () => {
    const file = join(dir, 'cred');
    writeFileSync(file, 'username=u\npassword=hunter2secret\n', { mode: 0o600 });
    expect(() => checkRootOnlyFile(file, 'share.mount.credentialsFile')).not.toThrow();
    chmodSync(file, 0o400);
    expect(() => checkRootOnlyFile(file, 'share.mount.credentialsFile')).not.toThrow();
    chmodSync(file, 0o640);
    expect(() => checkRootOnlyFile(file, 'share.mount.credentialsFile')).toThrow(/share\.mount\.credentialsFile: .*cred has mode 0640; make it 0600/);
    chmodSync(file, 0o600);
    chownSync(file, 1000, 0);
    let error: unknown;
    try {
      checkRootOnlyFile(file, 'share.mount.identityFile');
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ShareCredentialsError);
    expect((error as Error).message).toMatch(/share\.mount\.identityFile: .* is owned by UID 1000, not root/);
    expect((error as Error).message).not.toContain('hunter2secret');
    expect(() => checkRootOnlyFile(join(dir, 'missing'), 'share.mount.identityFile')).toThrow(/cannot be read \(ENOENT\)/);
    expect(() => checkRootOnlyFile(dir, 'share.mount.identityFile')).toThrow(/is not a regular file/);
  });

  it('probes a writable directory (write, fsync, read back, delete) and leaves nothing behind', async () => {
    const result = await runCommand(probeCommand(dir, 'i-1-1'), 10_000);
    expect(result).toEqual({ ok: true, detail: '' });
    expect(await runCommand(probeCommand(join(dir, 'missing'), 'i-1-2'), 10_000)).toMatchObject({ ok: false });
    const { readdirSync } = await import('node:fs');
    expect(readdirSync(dir).filter((f) => f.startsWith('.dspool-probe'))).toEqual([]);
  });

  it('gives up on a command at its deadline instead of waiting for it', async () => {
    const started = Date.now();
    const result = await runCommand({ file: '/bin/sleep', args: ['30'], env: {} }, 300);
    expect(result).toEqual({ ok: false, timedOut: true, detail: '/bin/sleep did not finish within 1 s' });
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(await runCommand({ file: '/bin/sh', args: ['-c', 'echo "mount error(13): Permission denied" >&2; exit 32'], env: {} }, 5_000)).toEqual({
      ok: false, detail: '/bin/sh exited with 32: mount error(13): Permission denied',
    });
  });
});
