// Attacks on a real pool (root, one instance, alice and mallory side by side, an admin): mallory's kernel and her
// SSH shell try every door to alice's files, kernels and the hub's secrets that the share layout and the instance's
// disk leave — the share, her runtime dir (kernel connection files and IPC sockets), /proc and loopback ports — and
// each is refused; alice's notebook is intact and the hub still answers afterwards. Other doors have their own suites:
// test/isolation-api.test.ts (tokens and scopes, bounded input), test/isolation-web.test.ts (logins, CSRF, origins),
// test/isolation-host.test.ts (cgroups, leftovers, the server's token).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, TestPool, executeInKernel, rand, run } from './harness.js';

const ready = IS_ROOT && existsSync('/usr/bin/jupyter-notebook') && existsSync('/usr/bin/ssh');
if (!ready) console.warn('test/isolation.test.ts skipped: needs root (users are kept apart by Unix accounts), Jupyter and ssh');

describe.skipIf(!ready)('users kept apart on a shared instance: the share, kernels, /proc and the hub\'s files', () => {
  const pool = new TestPool({ instances: 1, ssh: true });
  const alice = `a${rand()}`;
  const mallory = `m${rand()}`;
  const admin = `r${rand()}`;
  const keys = mkdtempSync(join(tmpdir(), 'dspool-isolation-'));
  const malloryKey = join(keys, 'mallory');
  let aliceToken = '';
  let malloryToken = '';
  const notebook = { cells: [{ cell_type: 'markdown', source: 'alice secret 42', metadata: {} }], metadata: {}, nbformat: 4, nbformat_minor: 5 };

  const inKernel = async (user: string, token: string, code: string): Promise<string> => {
    const created = await pool.fetch(`/user/${user}/api/kernels`, { method: 'POST', token, body: '{}', headers: { 'content-type': 'application/json' } });
    const { id } = (await created.json()) as { id: string };
    try {
      const ws = `${pool.url.replace('http', 'ws')}/user/${user}/api/kernels/${id}/channels`;
      return (await executeInKernel(ws, code, { authorization: `token ${token}` })).text.trim();
    } finally {
      await pool.fetch(`/user/${user}/api/kernels/${id}`, { method: 'DELETE', token });
    }
  };
  const malloryShell = (command: string) =>
    run('/usr/bin/ssh', [
      '-F', '/dev/null', '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'LogLevel=ERROR',
      '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-i', malloryKey, '-p', String(pool.sshPort), `${mallory}@127.0.0.1`, command,
    ], { timeoutMs: 120_000 });
  /** A Python probe: each path → 'EACCES' when refused, else what it read. */
  const probe = (paths: Record<string, string>): string => `
import json, os
out = {}
for name, p in ${JSON.stringify(paths)}.items():
    try:
        out[name] = sorted(os.listdir(p)) if os.path.isdir(p) else open(p, 'rb').read(200).decode('latin-1')
    except PermissionError:
        out[name] = 'EACCES'
    except Exception as e:
        out[name] = type(e).__name__
print(json.dumps(out))`;

  const aliceHome = () => join(pool.share, 'users', alice, 'home');
  let aliceRuntime = '';
  let aliceServerPid = 0;

  beforeAll(async () => {
    const made = await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', malloryKey]);
    if (made.code !== 0) throw new Error(made.stderr);
    await pool.start();
    await pool.addUser(admin, 'admin-password-1', true);
    aliceToken = await pool.addUser(alice, 'alice-password-1');
    malloryToken = await pool.addUser(mallory, 'mallory-password-1');
    const added = await pool.cli(['users', 'keys', 'add', mallory, `${malloryKey}.pub`]);
    if (added.code !== 0) throw new Error(added.stderr);
    await pool.startServer(alice, aliceToken);
    await pool.startServer(mallory, malloryToken);
    for (const where of ['secret.ipynb', 'notebooks/remote/shared-nothing.ipynb']) {
      const saved = await pool.fetch(`/user/${alice}/api/contents/${where}`, {
        method: 'PUT', token: aliceToken, body: JSON.stringify({ type: 'notebook', content: notebook }), headers: { 'content-type': 'application/json' },
      });
      if (saved.status !== 201 && saved.status !== 200) throw new Error(`save ${where}: ${saved.status}`);
    }
    // Alice keeps a kernel open: its connection file and IPC sockets are what mallory goes after.
    const kernel = await pool.fetch(`/user/${alice}/api/kernels`, { method: 'POST', token: aliceToken, body: '{}', headers: { 'content-type': 'application/json' } });
    if (kernel.status !== 201) throw new Error(`alice's kernel: ${kernel.status}`);
    const where = JSON.parse(await inKernel(alice, aliceToken, 'import json, os\nfrom jupyter_core.paths import jupyter_runtime_dir\nprint(json.dumps([jupyter_runtime_dir(), os.getppid()]))')) as [string, number];
    [aliceRuntime, aliceServerPid] = where;
  }, 240_000);

  afterAll(async () => {
    await pool.cleanup();
    rmSync(keys, { recursive: true, force: true });
  }, 90_000);

  it('lays the share out so that only alice reads her folder, on every start', () => {
    const aliceUid = Number(execFileSync('id', ['-u', alice], { encoding: 'utf8' }).trim());
    // Permission and setgid bits (Jupyter adds the sticky bit to its runtime dir, which changes nothing here).
    const mode = (p: string) => statSync(p).mode & 0o2777;
    const owner = (p: string) => Number(execFileSync('stat', ['-c', '%u', p], { encoding: 'utf8' }).trim());
    expect(mode(join(pool.share, 'users'))).toBe(0o711);
    expect(mode(join(pool.share, 'users', alice))).toBe(0o700);
    expect(owner(join(pool.share, 'users', alice))).toBe(aliceUid);
    expect(mode(aliceHome())).toBe(0o700);
    expect(mode(join(pool.share, 'team'))).toBe(0o2770);
    expect(execFileSync('stat', ['-c', '%G', join(pool.share, 'team')], { encoding: 'utf8' }).trim()).toBe(pool.teamGroup);
    expect(mode(aliceRuntime)).toBe(0o700);
    expect(owner(aliceRuntime)).toBe(aliceUid);
  });

  it('refuses mallory\'s kernel alice\'s notebooks, folders, kernel connection files and sockets, her server\'s environment and the hub\'s files', async () => {
    const connection = readFileSync(join(aliceRuntime, execFileSync('ls', [aliceRuntime], { encoding: 'utf8' }).split('\n').find((f) => /^kernel-.*\.json$/.test(f)) ?? ''), 'utf8');
    const info = JSON.parse(connection) as { transport: string; ip: string; shell_port: number };
    expect(info.transport).toBe('ipc');
    const targets = {
      notebook: join(aliceHome(), 'secret.ipynb'),
      remoteNotebook: join(pool.share, 'users', alice, 'notebooks', 'shared-nothing.ipynb'),
      folder: join(pool.share, 'users', alice),
      home: aliceHome(),
      users: join(pool.share, 'users'),
      runtime: aliceRuntime,
      socket: `${info.ip}-${info.shell_port}`,
      environ: `/proc/${aliceServerPid}/environ`,
      store: join(pool.dir, 'state', 'dspool.sqlite'),
      adminToken: join(pool.dir, 'state', 'secrets', 'admin-token'),
    };
    const seen = JSON.parse(await inKernel(mallory, malloryToken, probe(targets))) as Record<string, string>;
    for (const name of Object.keys(targets)) expect(seen[name], name).toBe('EACCES');

    // Connecting to alice's shell socket (IPC) is refused by the directory's mode, whatever the key.
    const zmq = await inKernel(mallory, malloryToken, [
      'import zmq',
      's = zmq.Context.instance().socket(zmq.DEALER)',
      's.setsockopt(zmq.LINGER, 0)',
      `s.connect(${JSON.stringify(`ipc://${targets.socket}`)})`,
      's.send(b"ping")',
      'print("reply" if s.poll(1000) else "no reply")',
    ].join('\n'));
    expect(zmq).toBe('no reply');

    // On loopback alice has her server, which wants its token, and her kernel's IOPub pipe (ipykernel's PULL socket for
    // subprocesses' output: it sends nothing and drops any message without the kernel's random 16-byte prefix); no
    // kernel channel (shell, control, stdin, iopub, heartbeat) listens on TCP.
    const listeners = await inKernel(mallory, malloryToken, `
uid = ${Number(execFileSync('id', ['-u', alice], { encoding: 'utf8' }).trim())}
ports = []
for line in open('/proc/net/tcp').read().splitlines()[1:]:
    f = line.split()
    if f[3] == '0A' and int(f[7]) == uid:
        ports.append(int(f[1].split(':')[1], 16))
import urllib.request, urllib.error, zmq
for p in sorted(ports):
    try:
        urllib.request.urlopen('http://127.0.0.1:%d/user/${alice}/api/contents' % p, timeout=5)
        print('open')
    except urllib.error.HTTPError as e:
        print(e.code)
    except Exception:
        s = zmq.Context.instance().socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.connect('tcp://127.0.0.1:%d' % p)
        print('zmq: ' + ('answered' if s.poll(1000) else 'silent'))`);
    const answers = listeners.split('\n').sort();
    expect(answers.filter((a) => a === '403')).toHaveLength(1);
    expect(answers.filter((a) => a !== '403').every((a) => a === 'zmq: silent'), listeners).toBe(true);
    expect(answers.length).toBeLessThanOrEqual(2);
  });

  it('refuses mallory\'s SSH shell the same files', async () => {
    const result = await malloryShell(`cat ${join(aliceHome(), 'secret.ipynb')}; echo "rc=$?"; ls ${join(pool.share, 'users', alice)}; echo "rc=$?"; ls ${join(pool.share, 'users')}; echo "rc=$?"; ls ${aliceRuntime}; echo "rc=$?"`);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trim().split('\n')).toEqual(['rc=1', 'rc=2', 'rc=2', 'rc=2']);
    expect(result.stderr.match(/Permission denied/g)?.length).toBe(4);
    expect(result.stdout + result.stderr).not.toContain('alice secret 42');
  });

  it('leaves alice\'s notebook intact and the hub answering after the attempts', async () => {
    const response = await pool.fetch(`/user/${alice}/api/contents/secret.ipynb`, { token: aliceToken });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { content: { cells: Array<{ source: string }> } };
    expect(body.content.cells[0]?.source).toBe('alice secret 42');
    expect((await pool.fetch('/hub/health')).status).toBe(200);
  });
});
