// The `share:` section of pool.yaml: the path every machine sees the shared drive at and, optionally, how each
// agent mounts it there (NFS, SMB/CIFS, sshfs, or a command of the operator's). Secrets never go in this file: they
// stay in root-only files on each machine, named here by path.
import { z } from 'zod';
import { duration } from './duration.js';

/** An absolute path on the instance's machine (config files are read there, not next to pool.yaml). */
const absolutePath = (what: string) => z.string().regex(/^\//, `must be an absolute path (${what} is read on each machine)`);

/** Mount options as `mount -o` takes them: no spaces, no commas inside one option, never a password. */
const mountOptions = z
  .array(
    z
      .string()
      .min(1)
      .regex(/^[^\s,]+$/, 'one option per item, without spaces or commas (e.g. "vers=4.2")')
      .refine((option) => !/^(pass(word)?|credentials|IdentityFile)=/i.test(option), {
        message: 'secrets never go in pool.yaml: use credentialsFile (cifs) or identityFile (sshfs), a root-only file on each machine',
      }),
  )
  .default([]);

const common = {
  options: mountOptions.describe('More mount options (`-o`), one per item, e.g. ["vers=4.2", "hard"]; never a password.'),
  timeout: duration('60s').describe('How long one mount may take before it counts as failed.'),
};

export const nfsMountSchema = z.strictObject({
  type: z.literal('nfs'),
  source: z
    .string()
    .regex(/^[^\s:]+:\/\S*$/, 'write server:/export, e.g. "files.example:/srv/share"')
    .describe('The export, `server:/path` (`mount -t nfs server:/path <share.path>`).'),
  ...common,
});

export const cifsMountSchema = z.strictObject({
  type: z.literal('cifs'),
  source: z
    .string()
    .regex(/^\/\/[^\s/]+\/\S+$/, 'write //server/share, e.g. "//acct.file.core.windows.net/share"')
    .describe('The SMB share, `//server/share` (Azure Files: `//<account>.file.core.windows.net/<share>`).'),
  credentialsFile: absolutePath('credentialsFile')
    .optional()
    .describe('Root-only file (owner root, mode 0600 or stricter) with `username=`, `password=` (and `domain=`) lines, given to mount.cifs as `credentials=<file>`; absent: a guest mount or Kerberos from options.'),
  ...common,
});

export const sshfsMountSchema = z.strictObject({
  type: z.literal('sshfs'),
  source: z
    .string()
    .regex(/^[a-z_][a-z0-9_.-]*@[^\s@:]+:\/\S*$/i, 'write user@host:/path, e.g. "share@files.example:/srv/share"')
    .describe('The file server\'s directory, `user@host:/path`.'),
  port: z.number().int().min(1).max(65535).default(22).describe('SSH port of the file server.'),
  identityFile: absolutePath('identityFile').describe('Root-only private key (owner root, mode 0600 or stricter) the agent logs in with (ssh `IdentityFile`).'),
  hostKey: z
    .string()
    .regex(/^(ssh-ed25519|ecdsa-sha2-nistp(256|384|521)|ssh-rsa|rsa-sha2-(256|512)) [A-Za-z0-9+/]+=*$/, 'write the server\'s public host key, e.g. "ssh-ed25519 AAAA…" (ssh-keyscan prints it)')
    .describe('The file server\'s public host key, pinned: a server presenting another key is refused (no trust on first use).'),
  ...common,
});

export const commandMountSchema = z.strictObject({
  type: z.literal('command'),
  command: z
    .array(z.string().min(1))
    .min(1)
    .describe('Command that mounts the share, e.g. ["/usr/local/sbin/mount-share"]; it gets DSPOOL_SHARE_PATH, DSPOOL_SHARE_SOURCE and DSPOOL_SHARE_CREDENTIALS in its environment and must exit 0 once the share is mounted there.'),
  source: z.string().min(1).optional().describe('Passed to the command as DSPOOL_SHARE_SOURCE; absent: any mount at share.path counts as the share.'),
  credentialsFile: absolutePath('credentialsFile').optional().describe('Root-only file (owner root, mode 0600 or stricter) whose path the command gets as DSPOOL_SHARE_CREDENTIALS.'),
  ...common,
});

export const shareMountSchema = z
  .discriminatedUnion('type', [nfsMountSchema, cifsMountSchema, sshfsMountSchema, commandMountSchema])
  .describe('How each agent mounts the share at share.path (at start, idempotently, and again when it goes stale); absent: the operator mounts it on every machine.');

export const shareSchema = z
  .strictObject({
    path: z.string().min(1).describe('The shared drive every instance sees; users\' notebooks live under users/<name>/notebooks.'),
    mount: shareMountSchema.optional(),
    probeInterval: duration('10s').describe('How often each agent checks that the share is mounted and writable (write, fsync, read back, delete a probe file).'),
    probeTimeout: duration('10s').describe('How long one check may take before the share counts as stale (a hung network mount).'),
  })
  .describe('The shared drive.');

export type ShareSection = z.output<typeof shareSchema>;
export type ShareMountConfig = z.output<typeof shareMountSchema>;
