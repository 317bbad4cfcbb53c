// End to end: the instance's fork server in a real pool (`dspool up`, real agents, Debian's notebook 6 and
// ipykernel). A user's server and kernels are forked from the pre-imported Python, run with the user's IDs and
// groups, share nothing with each other, and a fork server that dies is replaced while starts fall back to exec.
import { existsSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { IS_ROOT, TestPool, executeInKernel, rand, waitFor } from './harness.js';

interface KernelView {
  pid: number;
  ppid: number;
  parent: string;
  server: number;
  serverCmd: string;
  serverParentCmd: string;
  random: number;
  uuid: string;
  uid: number;
  gid: number;
  groups: number[];
  env: Record<string, string>;
  procEnviron: string[];
  fds: Record<string, string>;
  serverFds: Record<string, string>;
  sysPath0: string;
}

/** Run in a kernel: what it is, who its parents are, its random state, descriptors and environment. */
const INSPECT = `
import json, os, random, uuid, sys
def cmd(pid): return open('/proc/%d/cmdline' % pid, 'rb').read().replace(b'\\0', b' ').decode().strip()
def ppid(pid): return int(open('/proc/%d/stat' % pid).read().rsplit(')', 1)[1].split()[1])
def fds(pid):
    out = {}
    for fd in os.listdir('/proc/%d/fd' % pid):
        try: out[fd] = os.readlink('/proc/%d/fd/%s' % (pid, fd))
        except OSError: pass
    return out
me = os.getpid(); parent = os.getppid()
server = ppid(parent) if 'dspool-kernel-zygote' in cmd(parent) else parent
print(json.dumps({'pid': me, 'ppid': parent, 'parent': cmd(parent), 'server': server, 'serverCmd': cmd(server),
  'serverParentCmd': cmd(ppid(server)), 'random': random.random(), 'uuid': str(uuid.uuid4()), 'uid': os.getuid(),
  'gid': os.getgid(), 'groups': sorted(os.getgroups()), 'env': dict(os.environ),
  'procEnviron': [v for v in open('/proc/self/environ', 'rb').read().decode().split('\\0') if v],
  'fds': fds(me), 'serverFds': fds(server), 'sysPath0': sys.path[0]}))
`;

describe.skipIf(!existsSync('/usr/bin/jupyter-notebook') || !IS_ROOT)('fork server (needs root and Debian notebook 6)', () => {
  const pool = new TestPool({ instances: 1 });
  const user = `f${rand()}`;
  let token = '';

  const newKernel = async (): Promise<{ id: string; view: KernelView; ms: number }> => {
    const started = performance.now();
    const response = await pool.fetch(`/user/${user}/api/kernels`, {
      method: 'POST', token, body: JSON.stringify({ name: 'python3' }), headers: { 'content-type': 'application/json' },
    });
    expect(response.status).toBe(201);
    const { id } = (await response.json()) as { id: string };
    const ws = `${pool.url.replace(/^http/, 'ws')}/user/${user}/api/kernels/${id}/channels`;
    const first = await executeInKernel(ws, '1+1', { authorization: `token ${token}` });
    const ms = performance.now() - started;
    expect(first.text).toBe('2');
    const { text } = await executeInKernel(ws, INSPECT, { authorization: `token ${token}` });
    return { id, view: JSON.parse(text) as KernelView, ms };
  };

  /** The pool's own team group (the harness names one per pool) has GID `uidBase - 1`. */
  const teamGid = pool.uidBase - 1;
  const uidBase = pool.uidBase;

  beforeAll(async () => {
    await pool.start();
    token = await pool.addUser(user, `pw-${rand()}-long-enough`);
  }, 120_000);

  afterAll(async () => {
    await pool.cleanup();
  }, 90_000);

  it('forks the user\'s server and kernels from the pre-imported Python, with the user\'s IDs and groups', async () => {
    // The fork server imports for a second or two after the agent starts; until then starts exec.
    const deadline = Date.now() + 60_000;
    let a: KernelView | undefined;
    for (;;) {
      await pool.startServer(user, token);
      a = (await newKernel()).view;
      if (a.serverParentCmd.includes('dspool_forkserver') || Date.now() > deadline) break;
      await pool.fetch(`/hub/api/users/${user}/server`, { method: 'DELETE', token });
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    expect(a.serverParentCmd).toContain('dspool_forkserver');
    // /proc shows the server's own command and the kernel's own (rewritten over the fork server's).
    expect(a.serverCmd).toMatch(/^\/usr\/bin\/python3 \/usr\/bin\/jupyter-notebook --no-browser /);
    expect(a.parent).toContain('dspool-kernel-zygote');
    expect(readFileSync(`/proc/${a.pid}/cmdline`, 'utf8').split('\0').slice(0, 3)).toEqual(['/usr/bin/python3', '-m', 'ipykernel_launcher']);
    const uid = Number(/^Uid:\s+(\d+)/m.exec(readFileSync(`/proc/${a.server}/status`, 'utf8'))?.[1]);
    expect(uid).toBeGreaterThanOrEqual(uidBase);
    expect(a.uid).toBe(uid);
    // The user's own group and the pool's team group, nothing else.
    expect(a.groups).toEqual([teamGid, a.gid].sort((x, y) => x - y));
    // The kernel's environment is its own (in /proc too), and nothing of the fork server's.
    expect(Object.keys(a.env)).not.toContain('DSPOOL_FORKSERVER_ROOM');
    // (/proc/<pid>/environ is what it started with; IPython adds PAGER, TERM… to os.environ later.)
    const now = Object.entries(a.env).map(([k, v]) => `${k}=${v}`);
    expect(a.procEnviron.filter((entry) => !now.includes(entry))).toEqual([]);
    expect(a.procEnviron).toContain(`HOME=${pool.share}/users/${user}/home`);
    expect(a.env.HOME).toBe(`${pool.share}/users/${user}/home`);
    // `python3 -m ipykernel_launcher` puts the kernel's working directory first: so does the fork.
    expect(a.sysPath0).toBe(a.env.HOME);
  }, 120_000);

  it('gives two kernels nothing of each other or of their server: random state, uuids, descriptors', async () => {
    const [one, two] = [await newKernel(), await newKernel()];
    expect(one.view.random).not.toBe(two.view.random);
    expect(one.view.uuid).not.toBe(two.view.uuid);
    expect(one.view.server).toBe(two.view.server);
    // Past stdin/stdout/stderr (the server's output, as for an exec'd kernel) no socket or pipe is shared.
    // (Sockets and pipes are named by their inode, so the same name is the same one.)
    // ipykernel moves the stdout/stderr it inherits (the server's own output) above 2 to capture fd 1 and 2 itself:
    // those are the same by design, as for an exec'd kernel.
    const output = new Set([one.view.serverFds['1'], one.view.serverFds['2']]);
    const own = (fds: Record<string, string>): string[] =>
      Object.entries(fds).filter(([fd, target]) => Number(fd) > 2 && /^(socket|pipe):\[\d+\]$/.test(target) && !output.has(target)).map(([, t]) => t);
    expect(own(one.view.fds).length).toBeGreaterThan(3);
    expect(own(one.view.fds).filter((target) => own(two.view.fds).includes(target))).toEqual([]);
    expect(own(one.view.fds).filter((target) => own(one.view.serverFds).includes(target))).toEqual([]);
    // A second kernel in an open server: well under a second on an idle machine (the goal is 0.3 s).
    console.log(`second kernel → first result: ${two.ms.toFixed(0)} ms`);
    expect(two.ms).toBeLessThan(5000);
  }, 120_000);

  it('restarts a fork server that died; the next start works meanwhile (exec) and later forks again', async () => {
    const before = (await newKernel()).view;
    const forkServer = Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${before.server}/status`, 'utf8'))?.[1]);
    expect(readFileSync(`/proc/${forkServer}/cmdline`, 'utf8')).toContain('dspool_forkserver');
    process.kill(forkServer, 'SIGKILL');
    // The running server outlives its fork server.
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(existsSync(`/proc/${before.server}`)).toBe(true);
    await pool.fetch(`/hub/api/users/${user}/server`, { method: 'DELETE', token });
    await pool.startServer(user, token);
    const after = (await newKernel()).view;
    expect(after.server).not.toBe(before.server);
    const deadline = Date.now() + 60_000;
    let again = after;
    while (!again.serverParentCmd.includes('dspool_forkserver') && Date.now() < deadline) {
      await pool.fetch(`/hub/api/users/${user}/server`, { method: 'DELETE', token });
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await pool.startServer(user, token);
      again = (await newKernel()).view;
    }
    expect(again.serverParentCmd).toContain('dspool_forkserver');
    expect(Number(/^PPid:\s+(\d+)/m.exec(readFileSync(`/proc/${again.server}/status`, 'utf8'))?.[1])).not.toBe(forkServer);
  }, 180_000);

  it('stops a server with its kernel and its kernel zygote: nothing is left behind, not even a zombie', async () => {
    await pool.startServer(user, token);
    const { view } = await newKernel();
    expect(view.parent).toContain('dspool-kernel-zygote');
    const zygote = view.ppid;
    await pool.fetch(`/hub/api/users/${user}/server`, { method: 'DELETE', token });
    await waitFor('the server to be gone', () => !existsSync(`/proc/${view.server}`), 30_000);
    // The server reaps its zygote before it exits (and the zygote its kernels): a zombie would still be in /proc.
    expect(existsSync(`/proc/${zygote}`)).toBe(false);
    expect(existsSync(`/proc/${view.pid}`)).toBe(false);
  }, 120_000);
});

describe.skipIf(!existsSync('/usr/bin/jupyter-notebook'))('an instance its provider knows is gone (default repair settings)', () => {
  const pool = new TestPool({ instances: 2 });
  const user = `k${rand()}`;
  let token = '';
  let adminToken = '';

  beforeAll(async () => {
    await pool.start();
    token = await pool.addUser(user, `pw-${rand()}-long-enough`);
    adminToken = readFileSync(`${pool.dir}/state/secrets/admin-token`, 'utf8').trim();
  }, 120_000);

  afterAll(async () => {
    await pool.cleanup();
  }, 90_000);

  it('fails it at once: after kill -9 of its agent the user\'s next request gets a server elsewhere within 10 s', async () => {
    const { instance } = await pool.startServer(user, token);
    const instances = (await (await pool.fetch('/hub/api/instances', { token: adminToken })).json()) as Array<{ id: string; provider: { pid: number } }>;
    const victim = instances.find((i) => i.id === instance);
    expect(victim?.provider.pid).toBeGreaterThan(0);
    const killedAt = performance.now();
    process.kill(victim?.provider.pid as number, 'SIGKILL');
    let placed: { instance: string } | undefined;
    while (!placed && performance.now() - killedAt < 30_000) {
      const response = await pool.fetch(`/hub/api/users/${user}/server`, { method: 'POST', token });
      const body = (await response.json()) as { instance?: string };
      if ((response.status === 201 || response.status === 202) && body.instance && body.instance !== instance) placed = { instance: body.instance };
      else await new Promise((resolve) => setTimeout(resolve, 100));
    }
    expect(placed).toBeDefined();
    await pool.startServer(user, token);
    const kernel = await pool.fetch(`/user/${user}/api/kernels`, {
      method: 'POST', token, body: JSON.stringify({ name: 'python3' }), headers: { 'content-type': 'application/json' },
    });
    const { id } = (await kernel.json()) as { id: string };
    const { text } = await executeInKernel(`${pool.url.replace(/^http/, 'ws')}/user/${user}/api/kernels/${id}/channels`, '1+1', { authorization: `token ${token}` });
    const ms = performance.now() - killedAt;
    expect(text).toBe('2');
    console.log(`kill -9 → first result on ${placed?.instance}: ${ms.toFixed(0)} ms`);
    expect(ms).toBeLessThan(10_000);
    const events = (await (await pool.fetch('/hub/api/events?limit=200', { token: adminToken })).json()) as Array<{ kind: string; message: string }>;
    expect(events.some((e) => e.kind === 'instance.failed' && e.message.includes('killed by SIGKILL'))).toBe(true);
  }, 120_000);
});
