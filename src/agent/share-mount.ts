// How the agent mounts the share: the exact command for each `share.mount.type`, what /proc/self/mountinfo says is
// mounted where, and the root-only check on credential files. Pure functions and short-lived child processes only:
// nothing here touches the share's path in the agent's own process (a stale network mount can hang a system call).
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ShareMountSettings } from '../protocol/agent.js';
import { ShareCredentialsError } from './errors.js';

/** The alias the pinned host key is filed under in the agent's known_hosts file for sshfs. */
export const SSHFS_HOST_ALIAS = 'dspool-share';

/** One command line the agent runs; `env` is the whole environment it gets. */
export interface MountCommand {
  readonly file: string;
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

/** Where `mountCommand` may write what it needs (sshfs: the known_hosts file holding the pinned key). */
export interface MountCommandContext {
  /** Path of the known_hosts file for sshfs (written by the caller with `knownHostsLine`). */
  readonly knownHostsFile: string;
  /**
   * This sshfs refuses absolute symlink targets by default (`contain_symlinks`, Debian's security update of 3.7.3) and
   * takes `no_contain_symlinks` to allow them; see `sshfsContainsSymlinks`.
   */
  readonly sshfsContainsSymlinks?: boolean;
}

const BASE_ENV = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' } as const;

/**
 * The command that mounts `mount` at `sharePath`. Secrets never appear in it: CIFS gets `credentials=<file>`, sshfs an
 * `IdentityFile`, a command the file's path in `DSPOOL_SHARE_CREDENTIALS`.
 *
 * @example
 * mountCommand({ type: 'nfs', source: 'files:/srv/share', options: ['vers=4.2'], timeoutMs: 60000 }, '/srv/share', ctx);
 * // { file: 'mount', args: ['-t', 'nfs', '-o', 'vers=4.2', 'files:/srv/share', '/srv/share'], env: {…} }
 */
export function mountCommand(mount: ShareMountSettings, sharePath: string, ctx: MountCommandContext): MountCommand {
  switch (mount.type) {
    case 'nfs':
      return { file: 'mount', args: ['-t', 'nfs', ...optionArgs(mount.options), mount.source, sharePath], env: BASE_ENV };
    case 'cifs': {
      const options = [...(mount.credentialsFile ? [`credentials=${mount.credentialsFile}`] : []), ...mount.options];
      return { file: 'mount', args: ['-t', 'cifs', ...optionArgs(options), mount.source, sharePath], env: BASE_ENV };
    }
    case 'sshfs': {
      const options = [
        // Users' processes (their own accounts) go through it; the agent (root) mounts it.
        'allow_other',
        `IdentityFile=${mount.identityFile}`,
        'IdentitiesOnly=yes',
        `UserKnownHostsFile=${ctx.knownHostsFile}`,
        'GlobalKnownHostsFile=/dev/null',
        `HostKeyAlias=${SSHFS_HOST_ALIAS}`,
        'StrictHostKeyChecking=yes',
        'BatchMode=yes',
        'PasswordAuthentication=no',
        'ConnectTimeout=10',
        // A file server that stops answering ends the connection in ~15 s: the mount then fails fast, never hangs.
        'ServerAliveInterval=5',
        'ServerAliveCountMax=3',
        // $HOME/notebooks/remote is an absolute link into the share: a containing sshfs would answer EPERM for it. The
        // file server is authenticated (pinned key); a link still resolves here, under this machine's permissions.
        ...(ctx.sshfsContainsSymlinks ? ['no_contain_symlinks'] : []),
        ...mount.options,
      ];
      return { file: 'sshfs', args: [mount.source, sharePath, '-F', '/dev/null', '-p', String(mount.port), ...optionArgs(options)], env: BASE_ENV };
    }
    case 'command': {
      const [file, ...args] = mount.command as [string, ...string[]];
      return {
        file,
        args,
        env: {
          ...BASE_ENV,
          DSPOOL_SHARE_PATH: sharePath,
          ...(mount.source === undefined ? {} : { DSPOOL_SHARE_SOURCE: mount.source }),
          ...(mount.credentialsFile === undefined ? {} : { DSPOOL_SHARE_CREDENTIALS: mount.credentialsFile }),
          ...(mount.options.length === 0 ? {} : { DSPOOL_SHARE_OPTIONS: mount.options.join(',') }),
        },
      };
    }
  }
}

/**
 * Whether the installed sshfs knows `contain_symlinks` (and so applies it by default): its help mentions the option.
 *
 * @example
 * sshfsContainsSymlinks(); // true on Debian 12's sshfs 3.7.3-1.2~deb12u1
 */
export function sshfsContainsSymlinks(): boolean {
  const help = spawnSync('sshfs', ['-h'], { encoding: 'utf8', timeout: 10_000, env: BASE_ENV });
  return `${help.stdout ?? ''}${help.stderr ?? ''}`.includes('contain_symlinks');
}

function optionArgs(options: readonly string[]): string[] {
  return options.length === 0 ? [] : ['-o', options.join(',')];
}

/**
 * The lazy unmount run before mounting again over a stale share: `umount -l` detaches it at once even while it
 * hangs (`-c`: the path is not resolved, which would hang too).
 *
 * @example
 * unmountCommand('/srv/share').args; // ['-l', '-c', '/srv/share']
 */
export function unmountCommand(sharePath: string): MountCommand {
  return { file: 'umount', args: ['-l', '-c', sharePath], env: BASE_ENV };
}

/**
 * The write probe: writes a file under the share, fsyncs it (`sync FILE`), reads it back, compares and deletes it.
 * Run it with `runCommand` (a child with a deadline): on a stale network mount any of these can hang.
 *
 * @example
 * await runCommand(probeCommand('/srv/share', 'i-3f9c-1'), 10_000); // { ok: true, detail: '' }
 */
export function probeCommand(sharePath: string, id: string): MountCommand {
  const script = [
    'set -e',
    'f="$1/.dspool-probe-$2"',
    'printf %s "$3" > "$f"',
    'sync "$f"',
    'got=$(cat "$f")',
    'rm -f "$f"',
    '[ "$got" = "$3" ] || { echo "the probe file read back different bytes" >&2; exit 1; }',
  ].join('\n');
  return { file: '/bin/sh', args: ['-c', script, 'probe', sharePath, id, `dspool share probe ${id}`], env: BASE_ENV };
}

/**
 * The known_hosts line pinning an sshfs file server's host key (under the alias the generated ssh config uses).
 *
 * @example
 * knownHostsLine('ssh-ed25519 AAAAC3Nz…'); // 'dspool-share ssh-ed25519 AAAAC3Nz…\n'
 */
export function knownHostsLine(hostKey: string): string {
  return `${SSHFS_HOST_ALIAS} ${hostKey}\n`;
}

/** One line of /proc/self/mountinfo. */
export interface MountEntry {
  readonly mountPoint: string;
  readonly fsType: string;
  readonly source: string;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
const unescape = (field: string): string => field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));

/**
 * Parses /proc/self/mountinfo (proc(5)); lines that do not parse are skipped.
 *
 * @example
 * parseMountinfo('36 35 98:0 / /srv/share rw,relatime shared:1 - fuse.sshfs share@files:/srv rw\n');
 * // [{ mountPoint: '/srv/share', fsType: 'fuse.sshfs', source: 'share@files:/srv' }]
 */
export function parseMountinfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    const fields = line.split(' ');
    const dash = fields.indexOf('-', 6);
    const mountPoint = fields[4];
    const fsType = fields[dash + 1];
    const source = fields[dash + 2];
    if (dash < 0 || mountPoint === undefined || fsType === undefined || source === undefined) continue;
    entries.push({ mountPoint: unescape(mountPoint), fsType, source: unescape(source) });
  }
  return entries;
}

/**
 * The mount on top at `mountPoint` (the last one listed there), or undefined when it is not a mount point.
 *
 * @example
 * mountAt(parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')), '/srv/dspool/share')?.fsType; // 'fuse.sshfs'
 */
export function mountAt(entries: readonly MountEntry[], mountPoint: string): MountEntry | undefined {
  const wanted = path.resolve(mountPoint);
  return entries.filter((entry) => entry.mountPoint === wanted).at(-1);
}

const FS_TYPES: Record<ShareMountSettings['type'], readonly string[] | undefined> = {
  nfs: ['nfs', 'nfs4'],
  cifs: ['cifs', 'smb3'],
  sshfs: ['fuse.sshfs'],
  command: undefined,
};

/**
 * Whether `entry` is the configured share: the same kind of filesystem and the same source (trailing slashes aside).
 * For `command`, any mount is the share unless a `source` is given.
 *
 * @example
 * isTheShare({ mountPoint: '/srv/share', fsType: 'nfs4', source: 'files:/srv/share/' }, { type: 'nfs', source: 'files:/srv/share', … }); // true
 */
export function isTheShare(entry: MountEntry, mount: ShareMountSettings): boolean {
  const types = FS_TYPES[mount.type];
  if (types && !types.includes(entry.fsType)) return false;
  if (mount.source === undefined) return true;
  const trim = (s: string): string => (s.length > 1 ? s.replace(/\/+$/, '') : s);
  return trim(entry.source) === trim(mount.source);
}

/**
 * Refuses a credentials file that is not root's own: it must be a regular file owned by root (UID 0) with no
 * permission for group or others (0600 or stricter). Throws `ShareCredentialsError` naming the field and the path,
 * never the file's content.
 *
 * @example
 * checkRootOnlyFile('/etc/dspool/share.cred', 'share.mount.credentialsFile'); // throws unless root:root 0600
 */
export function checkRootOnlyFile(file: string, field: string): void {
  let info;
  try {
    info = statSync(file);
  } catch (error) {
    throw new ShareCredentialsError(field, file, `cannot be read (${(error as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (!info.isFile()) throw new ShareCredentialsError(field, file, 'is not a regular file');
  if (info.uid !== 0) throw new ShareCredentialsError(field, file, `is owned by UID ${info.uid}, not root`);
  if ((info.mode & 0o077) !== 0) {
    throw new ShareCredentialsError(field, file, `has mode ${(info.mode & 0o777).toString(8).padStart(4, '0')}; make it 0600 (chmod 600) so only root reads it`);
  }
}

/**
 * The credential files a mount names, with the pool.yaml field each comes from (checked root-only before a mount).
 *
 * @example
 * credentialFiles({ type: 'cifs', source: '//files/share', credentialsFile: '/etc/dspool/cifs' } as ShareMountSettings);
 * // [{ file: '/etc/dspool/cifs', field: 'share.mount.credentialsFile' }]
 */
export function credentialFiles(mount: ShareMountSettings): Array<{ file: string; field: string }> {
  if (mount.type === 'sshfs') return [{ file: mount.identityFile, field: 'share.mount.identityFile' }];
  if ((mount.type === 'cifs' || mount.type === 'command') && mount.credentialsFile) return [{ file: mount.credentialsFile, field: 'share.mount.credentialsFile' }];
  return [];
}

/** How a command run by `runCommand` ended. */
export interface CommandResult {
  readonly ok: boolean;
  /** The last lines it printed on stderr (at most 400 characters), or why it did not finish. */
  readonly detail: string;
  /** Present (true) when it was killed at its deadline. */
  readonly timedOut?: true;
}

let commandCounter = 0;

/**
 * Runs `command` with a deadline, never waiting past it: a child stuck in the kernel (a hung network mount) is sent
 * SIGKILL and left behind, and the promise settles anyway. Its stderr goes to a file, not a pipe: sshfs leaves its
 * ssh running with the stderr it was given, and a pipe would keep that process tied to the agent. Never rejects.
 *
 * @example
 * await runCommand(unmountCommand('/srv/share'), 10_000); // { ok: true, detail: '' }
 */
export function runCommand(command: MountCommand, timeoutMs: number): Promise<CommandResult> {
  const errFile = path.join(os.tmpdir(), `dspool-share-${process.pid}-${++commandCounter}.err`);
  let fd: number;
  try {
    fd = openSync(errFile, 'w', 0o600);
  } catch (error) {
    return Promise.resolve({ ok: false, detail: `cannot run ${command.file}: ${(error as Error).message}` });
  }
  const stderr = (): string => {
    try {
      return readFileSync(errFile, 'utf8').trim().split('\n').slice(-2).join(' ').slice(-400);
    } catch {
      return '';
    } finally {
      rmSync(errFile, { force: true });
    }
  };
  return new Promise((resolve) => {
    let settled = false;
    const finish = (result: CommandResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
    };
    // In a session of its own: sshfs starts ssh before it daemonizes, and that ssh must not die with the agent's
    // process group (the local provider kills it when an instance goes) while other agents use the mount.
    const child = spawn(command.file, [...command.args], { env: { ...command.env }, stdio: ['ignore', 'ignore', fd], detached: true });
    closeSync(fd);
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      rmSync(errFile, { force: true });
      finish({ ok: false, timedOut: true, detail: `${command.file} did not finish within ${Math.ceil(timeoutMs / 1000)} s` });
    }, timeoutMs);
    child.once('error', (error) => finish({ ok: false, detail: `${command.file}: ${error.message}` }));
    child.once('exit', (code, signal) => {
      const last = stderr();
      finish({ ok: code === 0, detail: code === 0 ? '' : `${command.file} exited with ${signal ?? code}${last ? `: ${last}` : ''}` });
    });
    child.unref();
  });
}
