// Helpers the benchmarks share: a free port, a user's first kernel result, hosts of their own (network namespaces), a real single-node Slurm.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import WebSocket from 'ws';

/** A free TCP port on loopback (bound once, then released for the process that will use it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/**
 * One request to a pool's (or JupyterHub's) API with a token: the status, the body as text, and the body as JSON
 * when it is JSON. Never follows redirects (a login redirect is an answer to see, not to follow).
 *
 * @example
 * const { status, json } = await api(url, `/hub/api/users/${user}`, { token });
 */
export async function api(base, path, { method = 'GET', token, body, timeoutMs = 90_000 } = {}) {
  const headers = { authorization: `token ${token}` };
  if (body !== undefined) headers['content-type'] = 'application/json';
  const response = await fetch(`${base}${path}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    redirect: 'manual',
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

/**
 * A user's first kernel result through a pool's front door: POST /hub/api/users/<user>/server, wait until ready,
 * POST api/kernels, run `1+1` over the kernel WebSocket. Returns the performance.now() of each step.
 */
export async function firstKernelResult(url, user, token, { timeoutMs = 90_000, pollMs = 50 } = {}) {
  const call = (path, method = 'GET', body) => api(url, path, { method, token, body, timeoutMs });
  const tPost = performance.now();
  const progress = followProgress(url, user, token, tPost);
  const started = await call(`/hub/api/users/${user}/server`, 'POST');
  if (started.status !== 201 && started.status !== 202) throw new Error(`start ${user}: ${started.status} ${started.text}`);
  for (const deadline = Date.now() + timeoutMs; !(await call(`/hub/api/users/${user}`)).json?.servers?.['']?.ready; await sleep(pollMs)) {
    if (Date.now() > deadline) throw new Error(`${user}'s server not ready in ${timeoutMs} ms`);
  }
  const tReady = performance.now();
  await progress.stop();
  const kernel = await call(`/user/${user}/api/kernels`, 'POST', { name: 'python3' });
  if (kernel.status !== 201) throw new Error(`kernel for ${user}: ${kernel.status} ${kernel.text}`);
  const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/user/${user}/api/kernels/${kernel.json.id}/channels`, { headers: { authorization: `token ${token}` }, perMessageDeflate: false });
  await new Promise((resolve, reject) => (ws.once('open', resolve), ws.once('error', reject)));
  const msgId = randomBytes(8).toString('hex');
  const text = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no kernel reply for ${user}`)), timeoutMs);
    let out = '';
    ws.on('message', (data) => {
      const m = JSON.parse(String(data));
      if (m.parent_header?.msg_id !== msgId) return;
      if (m.msg_type === 'execute_result') out += m.content.data?.['text/plain'] ?? '';
      if (m.msg_type === 'status' && m.content.execution_state === 'idle') (clearTimeout(timer), resolve(out));
    });
    ws.send(JSON.stringify({
      header: { msg_id: msgId, username: user, session: msgId, msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
      parent_header: {}, metadata: {}, buffers: [], channel: 'shell',
      content: { code: '1+1', silent: false, store_history: false, user_expressions: {}, allow_stdin: false, stop_on_error: true },
    }));
  });
  const tResult = performance.now();
  ws.close();
  if (text.trim() !== '2') throw new Error(`1+1 gave ${JSON.stringify(text)} for ${user}`);
  return { tPost, tReady, tResult, phases: progress.phases };
}

/**
 * Follows a starting server's progress stream (`GET /hub/api/users/<user>/server/progress`, JupyterHub's format,
 * served by dspool and JupyterHub) and collects when each step happened, in ms since `t0`: dspool's events carry
 * `phase` and `elapsed_ms` measured by its hub; JupyterHub's are stamped on arrival (its "Spawning server" step stands for "placed"). Opened just after the POST is sent; a stream
 * that opens after the server is ready yields nothing.
 */
export function followProgress(url, user, token, t0) {
  const phases = {};
  const controller = new AbortController();
  const done = (async () => {
    await sleep(15); // after the POST has made the server
    try {
      const response = await fetch(`${url}/hub/api/users/${user}/server/progress`, { headers: { authorization: `token ${token}`, accept: 'text/event-stream' }, signal: controller.signal });
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of response.body) {
        buffer += decoder.decode(chunk, { stream: true });
        for (let cut = buffer.indexOf('\n\n'); cut >= 0; cut = buffer.indexOf('\n\n')) {
          const data = buffer.slice(0, cut).split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('');
          buffer = buffer.slice(cut + 2);
          let event;
          try {
            event = JSON.parse(data);
          } catch {
            continue;
          }
          const phase = event.phase ?? (/spawning/i.test(event.message ?? '') ? 'placed' : event.ready ? 'ready' : event.failed ? 'failed' : undefined);
          if (phase && phases[phase] === undefined) phases[phase] = typeof event.elapsed_ms === 'number' ? event.elapsed_ms : performance.now() - t0;
          if (event.ready || event.failed) return;
        }
      }
    } catch {
      // aborted, or the stream ended
    }
  })();
  // The stream ends by itself after `ready`; give it a moment to get there (the poll may see `ready` first).
  const stop = async () => {
    await Promise.race([done, sleep(2000)]);
    controller.abort();
    await done;
  };
  return { phases, stop };
}

// ── Hosts of their own: network namespaces (the approach of test/netns.ts, in plain JavaScript for the benches) ──
/** A short random id (names of namespaces, links, users). */
export const rand = () => randomBytes(3).toString('hex');

/** True while `pid` exists. */
export function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * A namespace with loopback up and a veth pair to this machine, on a free /30 of 198.18.0.0/15 (nothing else is
 * ever used): `{ name, hostAddress, address, hostLink }`. Remove it with `removeNetns`.
 */
export function makeNetns() {
  const ip = (args) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const used = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
  let pair;
  for (let attempt = 0; attempt < 200 && !pair; attempt++) {
    const prefix = `198.${18 + Math.floor(Math.random() * 2)}.${Math.floor(Math.random() * 256)}.`;
    const fourth = Math.floor(Math.random() * 64) * 4;
    if (![1, 2].some((n) => used.includes(` ${prefix}${fourth + n}/`))) pair = [`${prefix}${fourth + 1}`, `${prefix}${fourth + 2}`];
  }
  if (!pair) throw new Error('no free /30 in 198.18.0.0/15');
  const id = rand();
  const ns = { name: `dsb-${id}`, hostLink: `vh${id}`, hostAddress: pair[0], address: pair[1] };
  ip(['netns', 'add', ns.name]);
  try {
    ip(['link', 'add', ns.hostLink, 'type', 'veth', 'peer', 'name', `vn${id}`]);
    ip(['link', 'set', `vn${id}`, 'netns', ns.name]);
    ip(['addr', 'add', `${ns.hostAddress}/30`, 'dev', ns.hostLink]);
    ip(['link', 'set', ns.hostLink, 'up']);
    ip(['-n', ns.name, 'addr', 'add', `${ns.address}/30`, 'dev', `vn${id}`]);
    ip(['-n', ns.name, 'link', 'set', `vn${id}`, 'up']);
    ip(['-n', ns.name, 'link', 'set', 'lo', 'up']);
    ip(['-n', ns.name, 'route', 'add', 'default', 'via', ns.hostAddress]);
  } catch (error) {
    removeNetns(ns);
    throw error;
  }
  return ns;
}

/** PIDs of the processes inside a namespace. */
export function netnsPids(ns) {
  return spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' }).stdout.split('\n').map(Number).filter((n) => n > 0);
}

/** Removes a namespace and its link. */
export function removeNetns(ns) {
  spawnSync('ip', ['link', 'del', ns.hostLink], { stdio: 'ignore' });
  spawnSync('ip', ['netns', 'del', ns.name], { stdio: 'ignore' });
}

/** A copy of this machine's /etc at `<dir>/etc` without other pools' `dspool-team` group: a host's own accounts. */
export function privateEtc(dir) {
  const etc = join(dir, 'etc');
  execFileSync('cp', ['-a', '/etc', etc]);
  for (const file of ['group', 'gshadow']) {
    const path = join(etc, file);
    if (existsSync(path)) writeFileSync(path, readFileSync(path, 'utf8').split('\n').filter((l) => !l.startsWith('dspool-team:')).join('\n'));
  }
  return etc;
}

/** The argv that runs `command` in namespace `ns` with `etc` bound over /etc (in a mount namespace of its own). */
export function inHost(ns, etc, command) {
  return ['nsenter', [`--net=/run/netns/${ns.name}`, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc && exec "$@"', etc, ...command]];
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once `pid` is gone. */
export async function stopPid(pid, graceMs = 15_000) {
  if (!pid || !alive(pid)) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (alive(pid) && Date.now() < deadline) await sleep(100);
  if (alive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
}

// ── A real single-node Slurm (the approach of test/slurm-cluster.ts): munged, slurmctld and slurmd as plain
// processes, the controller and node in a namespace of their own; stopped by PID. ──
export const SLURM_BINARIES = ['/usr/sbin/munged', '/usr/sbin/slurmctld', '/usr/sbin/slurmd', '/usr/bin/sbatch'];

export class SlurmCluster {
  dir = mkdtempSync(join(tmpdir(), 'dspool-bench-slurm-'));
  conf = join(this.dir, 'slurm.conf');
  node = `dspn${rand()}`;
  partition = 'debug';
  ns = undefined;
  pids = [];

  get env() {
    return { ...process.env, SLURM_CONF: this.conf };
  }

  async start() {
    chmodSync(this.dir, 0o711);
    this.ns = makeNetns();
    const d = this.dir;
    const key = join(d, 'munge.key');
    writeFileSync(key, randomBytes(1024), { mode: 0o400 });
    for (const sub of ['state', 'spool', 'log']) mkdirSync(join(d, sub), { mode: 0o700 });
    const socket = join(d, 'munge.sock');
    this.daemon('munged', ['-F', '-f', `--key-file=${key}`, `--socket=${socket}`, `--pid-file=${join(d, 'munged.pid')}`, `--seed-file=${join(d, 'munged.seed')}`, `--log-file=${join(d, 'log', 'munged.log')}`], false);
    await this.until(() => existsSync(socket), 'munged did not create its socket');
    writeFileSync(this.conf, [
      'ClusterName=dspoolbench', `SlurmctldHost=${hostname().split('.')[0]}(${this.ns.address})`,
      'SlurmctldPort=6817', 'SlurmdPort=6818', 'SlurmUser=root', 'SlurmdUser=root',
      'AuthType=auth/munge', `AuthInfo=socket=${socket}`, 'CredType=cred/munge',
      `StateSaveLocation=${d}/state`, `SlurmdSpoolDir=${d}/spool`, `SlurmctldPidFile=${d}/slurmctld.pid`, `SlurmdPidFile=${d}/slurmd.pid`,
      `SlurmctldLogFile=${d}/log/slurmctld.log`, `SlurmdLogFile=${d}/log/slurmd.log`,
      'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'SelectType=select/cons_tres', 'SelectTypeParameters=CR_CPU',
      'SchedulerType=sched/builtin', 'JobAcctGatherType=jobacct_gather/none', 'AccountingStorageType=accounting_storage/none',
      'MpiDefault=none', 'ReturnToService=2', 'SlurmdParameters=config_overrides', 'SlurmctldTimeout=300', 'SlurmdTimeout=300',
      'InactiveLimit=0', 'KillWait=5', 'MinJobAge=600', 'MessageTimeout=5',
      `NodeName=${this.node} NodeAddr=${this.ns.address} CPUs=8 RealMemory=4000 State=UNKNOWN`,
      `PartitionName=${this.partition} Nodes=${this.node} Default=YES MaxTime=INFINITE State=UP`, '',
    ].join('\n'));
    this.daemon('slurmctld', ['-D'], true);
    this.daemon('slurmd', ['-D', '-N', this.node], true);
    await this.until(() => spawnSync('sinfo', ['-h', '-o', '%t'], { env: this.env, encoding: 'utf8', timeout: 15_000 }).stdout?.trim() === 'idle', 'the Slurm node did not become idle');
  }

  /** Stops the daemons, then every process left in the namespace (jobs), and removes everything. */
  async stop() {
    const [munged, ...inNs] = this.pids;
    for (const pid of inNs) await stopPid(pid);
    if (this.ns) {
      for (const pid of netnsPids(this.ns)) await stopPid(pid, 2000);
      removeNetns(this.ns);
    }
    await stopPid(munged);
    rmSync(this.dir, { recursive: true, force: true });
  }

  daemon(name, args, inNamespace) {
    const out = openSync(join(this.dir, 'log', `${name}.out`), 'a');
    this.etc ??= privateEtc(this.dir);
    const [file, argv] = inNamespace ? inHost(this.ns, this.etc, [name, ...args]) : [name, args];
    const child = spawn(file, argv, { env: this.env, stdio: ['ignore', out, out], detached: true });
    closeSync(out);
    child.unref();
    this.pids.push(child.pid);
  }

  async until(check, what, timeoutMs = 60_000) {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (check()) return;
      await sleep(250);
    }
    throw new Error(`${what} (logs in ${this.dir}/log)`);
  }
}
