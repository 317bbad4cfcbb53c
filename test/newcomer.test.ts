// A newcomer follows the README: its quick-start commands run line by line as written — the CLI through npx, the
// real OpenSSH client — with a fresh, empty home directory, up to `ssh -o BatchMode=yes dspool`, without editing a
// file. OpenSSH reads ~/.ssh from the account's passwd entry, not $HOME, so each line runs in a private mount
// namespace where the account's home directory is a bind mount of a fresh temp dir (root only). Then the user
// commands a newcomer meets next: refusals with reasons (system account names, weak passwords, no password flag),
// users passwd and users rm.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, ROOT, TestPool, rand, run, type RunResult } from './harness.js';

const skipReason = !IS_ROOT
  ? 'needs root: OpenSSH takes ~ from the passwd entry, so a fresh home needs a bind mount in a mount namespace'
  : !existsSync('/usr/bin/jupyter-notebook') ? 'needs Debian jupyter-notebook (bash scripts/bootstrap.sh installs it)'
    : !existsSync('/usr/bin/ssh') || !existsSync('/usr/bin/ssh-keygen') ? 'needs the OpenSSH client (openssh-client)'
      : spawnSync('unshare', ['--version']).status !== 0 ? 'needs unshare (util-linux)' : '';
if (skipReason) console.warn(`test/newcomer.test.ts skipped: ${skipReason}`);

/** The README's quick start after `npm run up`: the shell block under "Then, in another terminal". */
function quickStart(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const after = readme.slice(readme.indexOf('Then, in another terminal'));
  const block = /```sh\n([\s\S]*?)```/.exec(after)?.[1] ?? '';
  return block.split('\n').filter((line) => line.trim() !== '');
}

describe.skipIf(skipReason !== '')('a newcomer following the README', () => {
  // Default password policy (8 characters), as a fresh pool.yaml has it.
  const pool = new TestPool({ instances: 1, ssh: true, passwordMinLength: 8 });
  // The README's "alice", under a name no other suite or earlier run holds as a Unix account on this machine.
  const name = `nc${rand()}`;
  const home = mkdtempSync(join(tmpdir(), 'dspool-newcomer-home-'));
  const accountHome = userInfo().homedir;
  const outputs = new Map<string, RunResult>();

  /** Runs one README line in bash, in a mount namespace whose home directory is the fresh one. */
  const asNewcomer = (line: string): Promise<RunResult> =>
    run('unshare', ['--mount', '--propagation', 'private', 'bash', '-c', 'mount --bind "$NEWCOMER_HOME" "$HOME" && cd "$DSPOOL_ROOT" && exec bash -eo pipefail -c "$LINE"'], {
      env: {
        HOME: accountHome, NEWCOMER_HOME: home, DSPOOL_ROOT: ROOT, LINE: line, DSPOOL_CONFIG: pool.config,
        npm_config_update_notifier: 'false', npm_config_fund: 'false',
      },
      timeoutMs: 120_000,
    });

  /** The line as the newcomer types it, with this pool's addresses and the test's user name. */
  const adapt = (line: string): string =>
    line
      .replace(/\balice\b/g, name)
      .replace(/127\.0\.0\.1:8000/g, pool.url.replace(/^http:\/\//, ''))
      .replace(/-p 2222\b/g, `-p ${pool.sshPort}`);

  beforeAll(async () => {
    await pool.start(); // what `npm run up` ends with: dspool up --config $DSPOOL_CONFIG
    pool.remember(name);
  }, 180_000);

  afterAll(async () => {
    await pool.cleanup();
    rmSync(home, { recursive: true, force: true });
  }, 90_000);

  it('runs every quick-start line as written, ending with ssh -o BatchMode=yes dspool', async () => {
    const lines = quickStart();
    expect(lines.some((l) => l.includes('ssh-config --install'))).toBe(true);
    expect(lines.some((l) => l.startsWith('ssh -o BatchMode=yes dspool'))).toBe(true);
    for (const line of lines) {
      if (line.startsWith('#')) {
        if (/open http/.test(line)) {
          // The browser step, as HTTP: the login form's cookie, then what a login with no `next` leads to.
          const cookie = await pool.login(name, 'a-good-password', null);
          // The login itself (a POST) started the server, before any page was asked for.
          const model = (await (await pool.fetch(`/hub/api/users/${name}`, { cookie })).json()) as { servers: Record<string, unknown> };
          expect(Object.keys(model.servers)).toEqual(['']);
          const spawn = await pool.fetch('/hub/spawn', { cookie, headers: { accept: 'text/html' } });
          expect(spawn.status).toBe(302);
          expect(spawn.headers.get('location')).toBe(`/hub/user/${name}/tree`);
          const progress = await pool.fetch(`/hub/user/${name}/tree`, { cookie, headers: { accept: 'text/html' } });
          expect([200, 202, 302]).toContain(progress.status);
          const deadline = Date.now() + 90_000;
          let status = 0;
          let location: string | null = null;
          while (Date.now() < deadline && status !== 200) {
            const response = await pool.fetch(`/user/${name}/tree`, { cookie, headers: { accept: 'text/html' } });
            ({ status } = response);
            location = response.headers.get('location');
            if (status !== 200) await new Promise((r) => setTimeout(r, 250));
          }
          expect(status, `Jupyter after login (last Location: ${location})\n${pool.output.slice(-3000)}`).toBe(200);
        }
        continue;
      }
      const command = adapt(line);
      const result = await asNewcomer(command);
      outputs.set(line, result);
      expect(result.code, `${command}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`).toBe(0);
    }
    const output = (start: string) => [...outputs.entries()].find(([l]) => l.startsWith(start))?.[1].stdout ?? '';
    // status says who runs where.
    expect(output('npx dspool status')).toMatch(new RegExp(`^${name}\\s+running\\s+i-\\S+`, 'm'));
    expect(output('npx dspool status')).toMatch(/· 1 user · 1 active session\n/);
    expect(output('npx dspool token')).toMatch(/^\S+\n$/);
    expect(output('ssh -p')).toMatch(/\S/);
  }, 600_000);

  it('installs the SSH settings idempotently: a second run changes nothing', async () => {
    const line = quickStart().find((l) => l.includes('ssh-config --install'));
    expect(line).toBeDefined();
    const config = readFileSync(join(home, '.ssh', 'config'), 'utf8');
    const known = readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8');
    expect(config.match(/^Host dspool$/gm)?.length).toBe(1);
    expect(known.trim().split('\n')).toHaveLength(2);
    const again = await asNewcomer(adapt(line ?? ''));
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout.match(/: unchanged/g)?.length).toBe(2);
    expect(readFileSync(join(home, '.ssh', 'config'), 'utf8')).toBe(config);
    expect(readFileSync(join(home, '.ssh', 'known_hosts'), 'utf8')).toBe(known);
    const viaAlias = await asNewcomer('ssh -o BatchMode=yes dspool \'echo "$USER"\'');
    expect(viaAlias.code, viaAlias.stderr).toBe(0);
    expect(viaAlias.stdout.trim()).toBe(name);
  }, 240_000);

  it('refuses a system account\'s name at once, naming the reason (exit 2, and 400 from the API)', async () => {
    const root = await pool.cli(['users', 'add', 'root', '--password-stdin'], 'a-good-password\n');
    expect(root.code).toBe(2);
    expect(root.stderr).toMatch(/username "root" is a system account or group name/);
    // A real group of this machine below the pool's UIDs that is not on the reserved list (Debian's ssl-cert).
    if (spawnSync('getent', ['group', 'ssl-cert']).status === 0) {
      const group = await pool.cli(['users', 'add', 'ssl-cert', '--no-password']);
      expect(group.code).toBe(2);
      expect(group.stderr).toMatch(/username "ssl-cert" is an existing system group \(GID \d+\) outside the pool's UID range/);
    }
    const token = (await pool.cli(['token', name])).stdout.trim();
    const admin = await pool.fetch('/hub/api/users/daemon', { method: 'POST', token, body: '{}', headers: { 'content-type': 'application/json' } });
    expect(admin.status).toBe(400);
    expect(((await admin.json()) as { message: string; field: string })).toMatchObject({ field: 'name', message: expect.stringMatching(/system account/) });
  }, 120_000);

  it('refuses short and common passwords with the reason, and needs a password flag to add a user', async () => {
    const dave = `d${rand()}`;
    const short = await pool.cli(['users', 'add', dave, '--password-stdin'], 'x\n');
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('password: it is 1 character long; at least 8 are needed');
    const common = await pool.cli(['users', 'add', dave, '--password-stdin'], 'password123\n');
    expect(common.code).toBe(2);
    expect(common.stderr).toContain('most common passwords');
    const none = await pool.cli(['users', 'add', dave]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--password-stdin.*or add --no-password/);
    const listed = JSON.parse((await pool.cli(['users', 'list', '--json'])).stdout) as Array<{ name: string }>;
    expect(listed.map((u) => u.name)).not.toContain(dave);
    pool.remember(dave);
    const added = await pool.cli(['users', 'add', dave, '--no-password']);
    expect(added.code, added.stderr).toBe(0);
    expect(added.stdout).toMatch(/no password/);
  }, 120_000);

  it('sets a password with users passwd (refusing a weak one) and deletes a user with users rm', async () => {
    const erin = `e${rand()}`;
    pool.remember(erin);
    expect((await pool.cli(['users', 'add', erin, '--password-stdin'], 'first-password\n')).code).toBe(0);
    const weak = await pool.cli(['users', 'passwd', erin, '--password-stdin'], 'qwerty\n');
    expect(weak.code).toBe(2);
    expect(weak.stderr).toMatch(/at least 8/);
    const changed = await pool.cli(['users', 'passwd', erin, '--password-stdin'], 'second-password\n');
    expect(changed.code, changed.stderr).toBe(0);
    await expect(pool.login(erin, 'first-password')).rejects.toThrow(/403/);
    const cookie = await pool.login(erin, 'second-password');
    expect(cookie).toMatch(/=/);
    // A write with the login cookie and no Origin is refused, saying the Origin is missing (not that it differs).
    const noOrigin = await pool.fetch(`/hub/api/users/${erin}/tokens`, { method: 'POST', cookie, body: '{}', headers: { 'content-type': 'application/json' } });
    expect(noOrigin.status).toBe(403);
    expect(((await noOrigin.json()) as { message: string }).message).toMatch(/Origin header is missing/);
    const foreign = await pool.fetch(`/hub/api/users/${erin}/tokens`, { method: 'POST', cookie, body: '{}', headers: { 'content-type': 'application/json', origin: 'http://evil.example' } });
    expect(((await foreign.json()) as { message: string }).message).toMatch(/Origin .* is not this site/);
    const removed = await pool.cli(['users', 'rm', erin]);
    expect(removed.code, removed.stderr).toBe(0);
    expect(removed.stdout).toMatch(/files stay on the share/);
    const again = await pool.cli(['users', 'rm', erin]);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`no user named "${erin}"`);
    const noTty = await pool.cli(['users', 'passwd', name]);
    expect(noTty.code).toBe(2);
    expect(noTty.stderr).toMatch(/--password-stdin/);
  }, 120_000);
});
