// Users kept apart on one instance (issue 14, items 3, 11 and 12), tried as an attacker would: a real pool run by
// `dspool up` as root with one instance, so alice and mallory share it. mallory squats the port alice's Jupyter is
// told to use (its --port= is readable in /proc), starves the instance's memory from her kernel and leaves jobs
// running under another environment; each is refused or contained, and alice's kernel keeps its state throughout.
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { detectCgroups } from '../src/agent/cgroup.js';
import { IS_ROOT, ROOT, TestPool, alive, executeInKernel, rand, run, sshKeyOptions } from './harness.js';

const tools = ['/usr/bin/jupyter-notebook', '/usr/bin/ssh', '/usr/bin/ssh-keygen', '/usr/bin/setpriv'];
const cgroups = IS_ROOT ? detectCgroups() : undefined;
const skip = !IS_ROOT ? 'needs root (users\' own accounts and cgroups)' : !cgroups ? 'no cgroup controllers on this host' : tools.find((t) => !existsSync(t));
if (skip) console.warn(`test/isolation-host.test.ts skipped: ${typeof skip === 'string' && skip.startsWith('/') ? `${skip} is missing` : skip}`);

/** mallory's memory limit: her profile's. */
const SMALL = 300 * 2 ** 20;

describe.skipIf(Boolean(skip))('users kept apart on a shared instance (root)', () => {
  const pool = new TestPool({ instances: 1, ssh: true });
  // The pool's own team group (the harness names one per pool): GID users.uidBase - 1.
  const teamGid = pool.uidBase - 1;
  writeFileSync(
    pool.config,
    readFileSync(pool.config, 'utf8').replace('pool: { instances: 1 }', `pool: { instances: 1, profiles: { small: { memory: ${SMALL}, processes: 200 } } }`),
  );
  const alice = `a${rand()}`;
  const mallory = `m${rand()}`;
  const keys = mkdtempSync(join(tmpdir(), 'dspool-iso-keys-'));
  const malloryKey = join(keys, 'mallory');
  const tokens: Record<string, string> = {};
  /** Kernel ids and their WebSocket URLs, by user. */
  const kernels: Record<string, string> = {};
  let aliceJupyterPid = 0;

  const ssh = (user: string, key: string, command: string) =>
    run('/usr/bin/ssh', [...sshKeyOptions(key, pool.sshPort), `${user}@127.0.0.1`, command]);
  const api = (path: string, user: string, init: RequestInit = {}) =>
    pool.fetch(path, { ...init, token: tokens[user] ?? '', headers: { 'content-type': 'application/json', ...(init.headers ?? {}) } });
  const startServer = async (user: string, body: object) => {
    const response = await api(`/hub/api/users/${user}/server`, user, { method: 'POST', body: JSON.stringify(body) });
    if (response.status !== 201 && response.status !== 202) throw new Error(`start ${user}: ${response.status} ${await response.text()}`);
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      const model = (await (await api(`/hub/api/users/${user}`, user)).json()) as { servers: Record<string, { ready: boolean }> };
      if (model.servers['']?.ready) return;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`${user}'s server not ready in time:\n${pool.output}`);
  };
  const newKernel = async (user: string) => {
    const response = await api(`/user/${user}/api/kernels`, user, { method: 'POST', body: '{}' });
    if (response.status !== 201) throw new Error(`kernel for ${user}: ${response.status} ${await response.text()}`);
    kernels[user] = ((await response.json()) as { id: string }).id;
  };
  const wsUrl = (user: string) => `${pool.url.replace('http', 'ws')}/user/${user}/api/kernels/${kernels[user] ?? ''}/channels`;
  const execute = async (user: string, code: string) => (await executeInKernel(wsUrl(user), code, { authorization: `token ${tokens[user] ?? ''}` })).text;
  const until = async (check: () => boolean, ms: number) => {
    const deadline = Date.now() + ms;
    while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    return check();
  };

  beforeAll(async () => {
    const made = await run('/usr/bin/ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', malloryKey]);
    if (made.code !== 0) throw new Error(made.stderr);
    chmodSync(keys, 0o700);
    await pool.start(180_000);
    tokens[alice] = await pool.addUser(alice, 'alice-pass');
    tokens[mallory] = await pool.addUser(mallory, 'mallory-pass');
    const added = await pool.cli(['users', 'keys', 'add', mallory, `${malloryKey}.pub`]);
    if (added.code !== 0) throw new Error(added.stderr);
    await startServer(mallory, { profile: 'small' });
    await newKernel(mallory);
  }, 300_000);

  afterAll(async () => {
    await pool.cleanup();
    rmSync(keys, { recursive: true, force: true });
  }, 120_000);

  it('never sends alice\'s server token to mallory\'s squatter on the port her Jupyter is told to use', async () => {
    // mallory watches the process table from her kernel and binds the port of alice's next Jupyter before it does.
    // (Should Jupyter win the race on a busy machine, the attack is run again: the test needs a squatter that won.)
    const script = readFileSync(join(ROOT, 'test/fixtures/squatter.py'), 'utf8');
    const recordFile = join(pool.share, 'users', mallory, 'home', 'squatter.log');
    let record = '';
    for (let attempt = 1; attempt <= 3 && !/bound/.test(record); attempt++) {
      if (attempt > 1) {
        await api(`/hub/api/users/${alice}/server`, alice, { method: 'DELETE' });
        await until(() => false, 3_000);
      }
      const started = await execute(
        mallory,
        [
          'import os, subprocess, time',
          `open(os.path.expanduser('~/squatter.py'), 'w').write(${JSON.stringify(script)})`,
          "record = os.path.expanduser('~/squatter.log')",
          "open(record, 'w').close()",
          // The previous attempt's squatter goes first.
          "import signal\ntry: os.kill(int(open(os.path.expanduser('~/squatter.pid')).read()), signal.SIGKILL)\nexcept Exception: pass",
          `p = subprocess.Popen(['python3', os.path.expanduser('~/squatter.py'), record, '120', '/user/${alice}/'], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)`,
          "open(os.path.expanduser('~/squatter.pid'), 'w').write(str(p.pid))",
          'deadline = time.time() + 20',
          "while time.time() < deadline and 'watching' not in open(record).read(): time.sleep(0.05)",
          'print(open(record).read().strip())',
        ].join('\n'),
      );
      expect(started).toContain('watching');
      await startServer(alice, {});
      record = readFileSync(recordFile, 'utf8');
    }
    // The race was real: mallory held the port alice's Jupyter was first told to use…
    expect(record).toMatch(/bound \S+ \d+/);
    // …and nothing ever reached her there: not the readiness probe, not the gateway.
    expect(record.split('\n').filter((line) => line && line !== 'watching' && !line.startsWith('bound ')), record).toEqual([]);
    expect(record).not.toMatch(/authorization|token/i);
    expect((await api(`/user/${alice}/api/status`, alice)).status).toBe(200);
    await newKernel(alice);
    expect((await execute(alice, 'import os\nx = 42\nprint(os.getpid())')).trim()).toMatch(/^\d+$/);
    const status = (await (await api(`/hub/api/users/${alice}`, alice)).json()) as { servers: Record<string, { pid?: number }> };
    aliceJupyterPid = status.servers['']?.pid ?? 0;
  }, 240_000);

  it('puts mallory\'s SSH shell in her session\'s cgroup, with her groups, umask 077 and her profile\'s memory and process limits', async () => {
    const inKernel = await execute(mallory, "print(open('/proc/self/cgroup').read().strip())");
    const shell = await ssh(mallory, malloryKey, 'cat /proc/self/cgroup; echo ---; id -G; umask');
    expect(shell.code, shell.stderr).toBe(0);
    const [cgroupText = '', ids = ''] = shell.stdout.split('---\n');
    const lines = (text: string) => text.trim().split('\n').filter((l) => /memory|pids|^0::/.test(l)).sort();
    expect(lines(cgroupText)).toEqual(lines(inKernel));
    expect(lines(cgroupText).join('\n')).toMatch(/\/dspool\/[^/]+\/session-/);
    const [groups = '', umask = ''] = ids.trim().split('\n');
    expect(groups.split(' ')).toContain(String(teamGid)); // the pool's team group
    expect(umask).toBe('0077');
    const memoryLine = lines(inKernel).find((l) => (cgroups?.version === 1 ? /^\d+:memory:/ : /^0::/).test(l)) ?? '';
    const relative = memoryLine.slice(memoryLine.lastIndexOf(':') + 1);
    const base = cgroups?.version === 1 ? '/sys/fs/cgroup/memory' : '/sys/fs/cgroup';
    const limitFile = cgroups?.version === 1 ? 'memory.limit_in_bytes' : 'memory.max';
    expect(readFileSync(join(base, relative, limitFile), 'utf8').trim()).toBe(String(SMALL));
    // And her profile's process limit.
    const pidsLine = lines(inKernel).find((l) => (cgroups?.version === 1 ? /^\d+:pids:/ : /^0::/).test(l)) ?? '';
    const pidsBase = cgroups?.version === 1 ? '/sys/fs/cgroup/pids' : '/sys/fs/cgroup';
    expect(readFileSync(join(pidsBase, pidsLine.slice(pidsLine.lastIndexOf(':') + 1), 'pids.max'), 'utf8').trim()).toBe('200');
  }, 120_000);

  it('kills only mallory\'s kernel when she allocates past her memory limit; alice\'s kernel keeps its state', async () => {
    const ws = new WebSocket(wsUrl(mallory), { headers: { authorization: `token ${tokens[mallory] ?? ''}` } });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    const states: string[] = [];
    const restarted = new Promise<string>((resolve) => {
      ws.on('message', (data) => {
        const message = JSON.parse(String(data)) as { msg_type: string; content: { execution_state?: string } };
        if (message.msg_type !== 'status' || !message.content.execution_state) return;
        states.push(message.content.execution_state);
        if (['restarting', 'dead'].includes(message.content.execution_state)) resolve(message.content.execution_state);
      });
    });
    ws.send(
      JSON.stringify({
        header: { msg_id: `oom-${rand()}`, username: mallory, session: `s-${rand()}`, msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
        parent_header: {}, metadata: {}, buffers: [], channel: 'shell',
        content: { code: "hog = b'x' * (1200 * 2**20)", silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
      }),
    );
    const state = await Promise.race([restarted, new Promise<string>((r) => setTimeout(() => r(`timeout; states seen: ${states.join(',')}`), 90_000))]);
    ws.close();
    // Jupyter reports mallory's kernel restarting (or dead): the kernel was the one killed.
    expect(['restarting', 'dead']).toContain(state);
    expect((await execute(alice, 'print(x)')).trim()).toBe('42');
    expect(aliceJupyterPid === 0 || alive(aliceJupyterPid)).toBe(true);
    // mallory's own server survived its kernel too.
    expect((await api(`/user/${mallory}/api/status`, mallory)).status).toBe(200);
  }, 180_000);

  it('ends everything mallory left running (`env -i HOME=/ nohup`, from SSH and from a kernel) when her session ends; alice keeps hers', async () => {
    // (The exec ends right away; it waits until nohup has set SIGHUP to ignored, or the exec's hang-up could beat it.)
    const fromSsh = await ssh(mallory, malloryKey, [
      'env -i HOME=/ PATH=/usr/bin:/bin nohup sleep 1000 >/dev/null 2>&1 & pid=$!',
      "for i in $(seq 100); do grep -Eq '^SigIgn:.*[13579bdf]$' /proc/$pid/status && break; sleep 0.05; done",
      'echo $pid',
    ].join('; '));
    expect(fromSsh.code, fromSsh.stderr).toBe(0);
    await newKernel(mallory); // her previous one restarted; a fresh one
    const fromKernel = await execute(
      mallory,
      "import subprocess\np = subprocess.Popen(['env', '-i', 'HOME=/', 'PATH=/usr/bin:/bin', 'nohup', 'sleep', '1001'], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nprint(p.pid)",
    );
    const pids = [Number(fromSsh.stdout.trim()), Number(fromKernel.trim())];
    expect(pids.every((p) => p > 0 && alive(p))).toBe(true);
    // Not findable by their environment: it is only HOME=/ and PATH.
    // (Popen returns once `env` is exec'd; `env` then execs nohup and sleep with the bare environment: wait for it.)
    const bare = 'HOME=/\0PATH=/usr/bin:/bin\0';
    const environOf = (pid: number): string => {
      try {
        return readFileSync(`/proc/${pid}/environ`, 'utf8');
      } catch {
        return '';
      }
    };
    await until(() => pids.every((pid) => environOf(pid) === bare && readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === 'sleep'), 10_000);
    for (const pid of pids) expect(environOf(pid)).toBe(bare);
    expect([202, 204]).toContain((await api(`/hub/api/users/${mallory}/server`, mallory, { method: 'DELETE' })).status);
    expect(await until(() => !pids.some(alive), 30_000)).toBe(true);
    expect((await execute(alice, 'print(x)')).trim()).toBe('42');
  }, 180_000);

  it('ends what alice left running when `dspool up` is stopped with Ctrl-C (the instance goes)', async () => {
    const fromKernel = await execute(
      alice,
      "import subprocess\np = subprocess.Popen(['env', '-i', 'HOME=/', 'PATH=/usr/bin:/bin', 'nohup', 'sleep', '1002'], start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\nprint(p.pid)",
    );
    const pid = Number(fromKernel.trim());
    expect(alive(pid)).toBe(true);
    expect(await pool.stop()).toBe(0);
    expect(await until(() => !alive(pid), 15_000)).toBe(true);
  }, 120_000);
});
