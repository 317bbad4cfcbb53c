import { describe, expect, it } from 'vitest';
import { ConfigError } from './errors.js';
import { parseConfig } from './load.js';

const parse = (share: string) => parseConfig(`share: ${share}\n`, '/etc/dspool/pool.yaml');
const problems = (share: string): string => {
  try {
    parse(share);
  } catch (error) {
    if (error instanceof ConfigError) return error.message;
    throw error;
  }
  throw new Error('the config was accepted');
};

describe('pool.yaml share.mount', () => {
  it('has no mount by default (the operator mounts the share), probed every 10 s with a 10 s deadline when there is one', () => {
    const { share } = parse('{ path: /srv/share }');
    expect(share).toEqual({ path: '/srv/share', probeInterval: 10_000, probeTimeout: 10_000 });
  });

  it('takes each kind of mount with its defaults filled in and durations in milliseconds', () => {
    expect(parse('{ path: /srv/share, mount: { type: nfs, source: "files:/export/share", options: [vers=4.2, hard] } }').share.mount).toEqual({
      type: 'nfs', source: 'files:/export/share', options: ['vers=4.2', 'hard'], timeout: 60_000,
    });
    expect(parse('{ path: /srv/share, mount: { type: cifs, source: "//acct.file.core.windows.net/share", credentialsFile: /etc/dspool/smb.cred, timeout: 30s } }').share.mount).toEqual({
      type: 'cifs', source: '//acct.file.core.windows.net/share', credentialsFile: '/etc/dspool/smb.cred', options: [], timeout: 30_000,
    });
    expect(parse('{ path: /srv/share, mount: { type: sshfs, source: "share@files:/srv/share", identityFile: /etc/dspool/share_key, hostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK" } }').share.mount).toEqual({
      type: 'sshfs', source: 'share@files:/srv/share', port: 22, identityFile: '/etc/dspool/share_key', hostKey: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK', options: [], timeout: 60_000,
    });
    expect(parse('{ path: /srv/share, mount: { type: command, command: [/usr/local/sbin/mount-share, --fast] } }').share.mount).toEqual({
      type: 'command', command: ['/usr/local/sbin/mount-share', '--fast'], options: [], timeout: 60_000,
    });
  });

  it('refuses bad input naming the field', () => {
    expect(problems('{ path: /srv/share, mount: { type: nfs, source: "files" } }')).toMatch(/share\.mount\.source: write server:\/export/);
    expect(problems('{ path: /srv/share, mount: { type: cifs, source: "//files/share", credentialsFile: smb.cred } }')).toMatch(/share\.mount\.credentialsFile: must be an absolute path/);
    expect(problems('{ path: /srv/share, mount: { type: sshfs, source: "share@files:/srv", identityFile: /k } }')).toMatch(/share\.mount\.hostKey/);
    expect(problems('{ path: /srv/share, mount: { type: sshfs, source: "share@files:/srv", identityFile: /k, hostKey: "not a key" } }')).toMatch(/share\.mount\.hostKey: write the server's public host key/);
    expect(problems('{ path: /srv/share, mount: { type: webdav, source: x } }')).toMatch(/share\.mount\.type/);
    expect(problems('{ path: /srv/share, mount: { type: nfs, source: "files:/s", timeout: soon } }')).toMatch(/share\.mount\.timeout: "soon" is not a duration/);
    expect(problems('{ path: /srv/share, mount: { type: nfs, source: "files:/s", opts: [] } }')).toMatch(/share\.mount\.opts/);
  });

  it('refuses a secret in the options and never repeats it', () => {
    const message = problems('{ path: /srv/share, mount: { type: cifs, source: "//files/share", options: [username=u, password=hunter2secret] } }');
    expect(message).toMatch(/share\.mount\.options\.1: secrets never go in pool\.yaml: use credentialsFile/);
    expect(message).not.toContain('hunter2secret');
    expect(problems('{ path: /srv/share, mount: { type: nfs, source: "files:/s", options: ["vers=4.2,hard"] } }')).toMatch(/one option per item/);
  });
});
