// End to end over SSH: the real OpenSSH client → `dspool up`'s front door → the user's own instance, started on
// demand, with the user's account, $HOME and notebooks on the share.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, TestPool, alive, executeInKernel, rand, run } from './harness.js';

const ready = existsSync('/usr/bin/jupyter-notebook') && existsSync('/usr/bin/ssh') && existsSync('/usr/bin/ssh-keygen');

describe.skipIf(!ready)('SSH through a running pool', () => {
  const pool = new TestPool({ instances: 2, ssh: true });
  const alice = `s${rand()}`;
  const bob = `t${rand()}`;
  const keys = mkdtempSync(join(tmpdir(), 'dspool-ssh-keys-'));
  const aliceKey = join(keys, 'alice');
  const bobKey = join(keys, 'bob');
  const askpass = join(keys, 'askpass.sh');
  let aliceToken = '';
  let bobToken = '';

  const base = (): string[] => [
    '-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'ConnectTimeout=30',
    '-o', 'LogLevel=ERROR', '-p', String(pool.sshPort),
  ];
  const withKey = (key: string) => [...base(), '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', key];
  const ssh = (user: string, key: string, command: string) => run('/usr/bin/ssh', [...withKey(key), `${user}@127.0.0.1`, command]);

  beforeAll(async () => {
    for (const key of [aliceKey, bobKey]) {
      const made = await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
      if (made.code !== 0) throw new Error(made.stderr);
    }
    writeFileSync(askpass, '#!/bin/sh\necho "$DSPOOL_TEST_PASSWORD"\n');
    chmodSync(askpass, 0o755);
    await pool.start();
    aliceToken = await pool.addUser(alice, 'alice-pass');
    bobToken = await pool.addUser(bob, 'bob-pass');
    const added = await pool.cli(['users', 'keys', 'add', alice, `${aliceKey}.pub`]);
    if (added.code !== 0) throw new Error(added.stderr);
    const response = await pool.fetch(`/hub/api/users/${bob}/keys`, { method: 'POST', token: bobToken, body: JSON.stringify({ key: readFileSync(`${bobKey}.pub`, 'utf8') }) });
    if (response.status !== 201) throw new Error(await response.text());
  }, 180_000);

  afterAll(async () => {
    await pool.cleanup();
    rmSync(keys, { recursive: true, force: true });
  }, 90_000);

  it('starts alice\'s session on demand, with progress on stderr only, and runs her command as her', async () => {
    const result = await ssh(alice, aliceKey, 'echo "$USER:$HOME"; id -u; readlink "$HOME/notebooks/remote"');
    expect(result.code).toBe(0);
    const [who, uid, link] = result.stdout.trim().split('\n');
    expect(who).toBe(`${alice}:${join(pool.share, 'users', alice, 'home')}`);
    if (IS_ROOT) expect(Number(uid)).toBeGreaterThanOrEqual(pool.uidBase);
    expect(link).toBe(join(pool.share, 'users', alice, 'notebooks'));
    expect(result.stdout).not.toMatch(/dspool:/);
    const model = (await (await pool.fetch(`/hub/api/users/${alice}`, { token: aliceToken })).json()) as { servers: Record<string, { ready: boolean }> };
    expect(model.servers['']?.ready).toBe(true);
  });

  it('lands on the same instance as the user\'s Jupyter server and propagates exit codes', async () => {
    const result = await ssh(alice, aliceKey, 'echo hello > "$HOME/notebooks/remote/from-ssh.txt"; exit 7');
    expect(result.code).toBe(7);
    expect(readFileSync(join(pool.share, 'users', alice, 'notebooks', 'from-ssh.txt'), 'utf8')).toBe('hello\n');
    const viaJupyter = await pool.fetch(`/user/${alice}/api/contents/notebooks/remote/from-ssh.txt`, { token: aliceToken });
    expect(viaJupyter.status).toBe(200);
  });

  it('gives the SSH shell the environment her Jupyter kernels have (PATH, locale, granted GPUs, config dir)', async () => {
    const names = ['HOME', 'USER', 'PATH', 'LANG', 'CUDA_VISIBLE_DEVICES', 'JUPYTER_CONFIG_DIR'];
    const shell = await ssh(alice, aliceKey, names.map((n) => `echo "${n}=\${${n}-<unset>}"`).join('; '));
    expect(shell.code, shell.stderr).toBe(0);
    const kernel = (await (await pool.fetch(`/user/${alice}/api/kernels`, { method: 'POST', token: aliceToken, body: '{}', headers: { 'content-type': 'application/json' } })).json()) as { id: string };
    const wsUrl = `${pool.url.replace('http', 'ws')}/user/${alice}/api/kernels/${kernel.id}/channels`;
    const code = `import os\nfor n in ${JSON.stringify(names)}: print(n + "=" + os.environ.get(n, "<unset>"))`;
    const inKernel = await executeInKernel(wsUrl, code, { authorization: `token ${aliceToken}` });
    await pool.fetch(`/user/${alice}/api/kernels/${kernel.id}`, { method: 'DELETE', token: aliceToken });
    expect(shell.stdout.trim().split('\n')).toEqual(inKernel.text.trim().split('\n'));
    // No GPU was granted, so none is visible (set and empty, not unset).
    expect(shell.stdout).toContain('CUDA_VISIBLE_DEVICES=\n');
    expect(shell.stdout).not.toContain('JUPYTER_TOKEN');
  });

  it('copies files with scp both ways', async () => {
    const local = join(keys, 'payload.bin');
    writeFileSync(local, Buffer.alloc(2 * 1024 * 1024, 7));
    const up = await run('/usr/bin/scp', [...withKey(aliceKey).map((a) => (a === '-p' ? '-P' : a)), local, `${alice}@127.0.0.1:notebooks/remote/payload.bin`]);
    expect(up.code, up.stderr).toBe(0);
    expect(readFileSync(join(pool.share, 'users', alice, 'notebooks', 'payload.bin')).length).toBe(2 * 1024 * 1024);
    const back = join(keys, 'back.bin');
    const down = await run('/usr/bin/scp', [...withKey(aliceKey).map((a) => (a === '-p' ? '-P' : a)), `${alice}@127.0.0.1:notebooks/remote/payload.bin`, back]);
    expect(down.code, down.stderr).toBe(0);
    expect(readFileSync(back).equals(readFileSync(local))).toBe(true);
  });

  it('accepts a password through the front door and refuses a wrong one', async () => {
    const opts = [...base(), '-o', 'PreferredAuthentications=password', '-o', 'PubkeyAuthentication=no', '-o', 'NumberOfPasswordPrompts=1'];
    const env = (password: string) => ({ SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: 'force', DSPOOL_TEST_PASSWORD: password, DISPLAY: ':0' });
    const good = await run('/usr/bin/ssh', [...opts, `${bob}@127.0.0.1`, 'whoami'], { env: env('bob-pass') });
    expect(good.code, good.stderr).toBe(0);
    if (IS_ROOT) expect(good.stdout.trim()).toBe(bob);
    const bad = await run('/usr/bin/ssh', [...opts, `${bob}@127.0.0.1`, 'whoami'], { env: env('wrong') });
    expect(bad.code).toBe(255);
    expect(bad.stderr).toMatch(/Permission denied/);
  });

  it('refuses bob\'s key for alice, and an unknown user', async () => {
    const asAlice = await ssh(alice, bobKey, 'true');
    expect(asAlice.code).toBe(255);
    expect(asAlice.stderr).toMatch(/Permission denied/);
    const nobody = await ssh(`n${rand()}`, aliceKey, 'true');
    expect(nobody.code).toBe(255);
  });

  it('registers a key from the home page, and refuses SSH to a disabled user', async () => {
    const webKey = join(keys, 'bob-web');
    expect((await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', webKey])).code).toBe(0);
    const cookie = await pool.login(bob, 'bob-pass');
    const added = await pool.fetch('/hub/home/keys', {
      method: 'POST', cookie, headers: { origin: pool.url }, body: new URLSearchParams({ key: readFileSync(`${webKey}.pub`, 'utf8') }),
    });
    expect(added.status).toBe(302);
    const fingerprint = (await run('/usr/bin/ssh-keygen', ['-l', '-f', `${webKey}.pub`])).stdout.split(' ')[1] ?? '';
    expect(await (await pool.fetch('/hub/home', { cookie })).text()).toContain(fingerprint);
    const bad = await pool.fetch('/hub/home/keys', { method: 'POST', cookie, headers: { origin: pool.url }, body: new URLSearchParams({ key: 'not a key' }) });
    expect(bad.status).toBe(400);
    const viaWebKey = await ssh(bob, webKey, 'whoami');
    expect(viaWebKey.code, viaWebKey.stderr).toBe(0);
    expect((await pool.cli(['users', 'disable', bob])).code).toBe(0);
    const refused = await ssh(bob, webKey, 'whoami');
    expect(refused.code).toBe(255);
    expect((await pool.cli(['users', 'disable', bob, '--enable'])).code).toBe(0);
  });

  it('prints an ssh-config block that works as written', async () => {
    const printed = await pool.cli(['ssh-config', '--user', alice]);
    expect(printed.code).toBe(0);
    expect(printed.stdout).toContain(`Port ${pool.sshPort}`);
    expect(printed.stdout).toMatch(/HostKeyAlias dspool-127\.0\.0\.1-\d+/);
    const knownHosts = printed.stdout.split('\n').find((l) => l.startsWith('# dspool-'))?.slice(2) ?? '';
    const configFile = join(keys, 'ssh_config');
    const knownFile = join(keys, 'known_hosts');
    writeFileSync(configFile, `${printed.stdout}  IdentityFile ${aliceKey}\n  IdentitiesOnly yes\n  BatchMode yes\n  StrictHostKeyChecking yes\n  UserKnownHostsFile ${knownFile}\n`);
    writeFileSync(knownFile, `${knownHosts}\n`);
    const result = await run('/usr/bin/ssh', ['-F', configFile, 'dspool', 'echo via-config']);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim()).toBe('via-config');
  });

  it('shows a drain notice on the user\'s open terminal, and in their server model', async () => {
    const admin = `a${rand()}`;
    const adminToken = await pool.addUser(admin, 'pw', true);
    const model = (await (await pool.fetch(`/hub/api/users/${alice}`, { token: aliceToken })).json()) as { servers: Record<string, { instance: string }> };
    const instance = model.servers['']?.instance ?? '';
    const terminal = run('/usr/bin/ssh', [...withKey(aliceKey), '-tt', `${alice}@127.0.0.1`, 'echo started; sleep 6; echo done'], { timeoutMs: 60_000 });
    await new Promise((r) => setTimeout(r, 2500));
    const drained = await pool.fetch(`/hub/api/instances/${instance}/drain`, { method: 'POST', token: adminToken, body: JSON.stringify({ deadline: '10m' }) });
    expect(drained.status).toBe(202);
    const result = await terminal;
    expect(result.stdout).toMatch(/\[dspool\] This instance \(i-[a-z0-9]+\) is being drained/);
    expect(result.stdout).toContain('done');
    const after = (await (await pool.fetch(`/hub/api/users/${alice}`, { token: aliceToken })).json()) as { servers: Record<string, { notice: string | null }> };
    expect(after.servers['']?.notice).toMatch(/being drained/);
  });

  it('ends the user\'s SSH sessions on the instance when their server stops, processes included', async () => {
    // A detached job too: it survives the SSH hang-up (nohup), not the end of the session.
    // (The exec ends right away; it waits until nohup has set SIGHUP to ignored, or the hang-up could beat it.)
    const job = await ssh(alice, aliceKey, [
      'nohup sleep 300 >/dev/null 2>&1 & pid=$!',
      "for i in $(seq 100); do grep -Eq '^SigIgn:.*[13579bdf]$' /proc/$pid/status && break; sleep 0.05; done",
      'echo $pid',
    ].join('; '));
    expect(job.code, job.stderr).toBe(0);
    const jobPid = Number(job.stdout.trim());
    expect(alive(jobPid)).toBe(true);
    const terminal = run('/usr/bin/ssh', [...withKey(aliceKey), '-tt', `${alice}@127.0.0.1`, 'echo "pid=$$"; sleep 120; echo survived'], { timeoutMs: 90_000 });
    let pid = 0;
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && pid === 0) {
      const model = (await (await pool.fetch(`/hub/api/users/${alice}`, { token: aliceToken })).json()) as { servers: Record<string, { ready: boolean }> };
      const remote = model.servers['']?.ready ? await run('/usr/bin/pgrep', ['-u', alice, '-x', 'sleep']) : undefined;
      pid = Number(remote?.stdout.trim().split('\n').find((p) => Number(p) !== jobPid) ?? 0);
      if (pid === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(pid).toBeGreaterThan(0);
    const stopped = await pool.fetch(`/hub/api/users/${alice}/server`, { method: 'DELETE', token: aliceToken });
    expect([202, 204]).toContain(stopped.status);
    const started = Date.now();
    const result = await terminal;
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(result.stdout).toContain('your server on this instance has stopped');
    expect(result.stdout).not.toContain('survived');
    const gone = Date.now() + 15_000;
    while (Date.now() < gone && (alive(pid) || (IS_ROOT && alive(jobPid)))) await new Promise((r) => setTimeout(r, 100));
    expect(alive(pid)).toBe(false);
    // As root the agent also ends what the user left running under their account on this instance.
    if (IS_ROOT) expect(alive(jobPid)).toBe(false);
  });
});
