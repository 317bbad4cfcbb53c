// One cgroup per user session on an instance: it holds every process the session starts (Jupyter, kernels, SSH
// shells, whatever they detach), carries the session's memory, CPU and process limits, and is what ends them all
// when the session is over. cgroup v1 (one hierarchy per controller, as on this project's CI machines) and v2 (one
// unified hierarchy) are both supported; which one is detected once, at agent start.
//
// Layout, under the agent's own cgroup `<base>` (per controller on v1), so a host's own limits on the pool still
// apply and nothing is created where the agent was not put:
//
//   <base>/dspool/<instance>/             one per instance: `instanceCgroupName(id, scratchDir)`; deleting the
//                                         instance kills and removes the whole folder
//   <base>/dspool/<instance>/session-<id>/ one per session: limits, and the `cgroup.procs` its processes join
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { pidAlive, sendSignal } from '../lib/process.js';
import { CgroupSetupError } from './errors.js';

/** The controllers a session's limits use. */
export type CgroupController = 'memory' | 'cpu' | 'pids';
const CONTROLLERS: readonly CgroupController[] = ['memory', 'cpu', 'pids'];

/**
 * Where this host keeps cgroups, as `detectCgroups` found them.
 * - v1: the agent's own cgroup folder in each controller's hierarchy that is mounted (a missing controller is
 *   absent: its limit is not applied).
 * - v2: the agent's own cgroup folder in the unified hierarchy and the controllers it may hand down.
 */
export type CgroupHost =
  | { readonly version: 1; readonly dirs: Readonly<Partial<Record<CgroupController, string>>> }
  | { readonly version: 2; readonly dir: string; readonly controllers: readonly CgroupController[] };

/** A session's limits; 0 means "no limit" for each. */
export interface CgroupLimits {
  /** Memory (and, where the host accounts swap, memory + swap) in bytes. */
  readonly memoryBytes: number;
  /** CPU time, in cores (1.5 = one and a half cores' worth of time per period). */
  readonly cpu: number;
  /** Processes and threads at once. */
  readonly pids: number;
}

/** The cgroup of one session, as `createSessionCgroup` returns it. */
export interface SessionCgroup {
  /** Its folder in each hierarchy (one on v2). */
  readonly dirs: readonly string[];
  /** The `cgroup.procs` files a process writes its PID to (before exec) to join the session: `SpawnSpec.cgroupProcs`. */
  readonly procsFiles: readonly string[];
  /** Live processes in it now. */
  pids(): number[];
  /**
   * Ends every process in it: SIGTERM, then SIGKILL (v2: `cgroup.kill`) for what is left after `graceMs`, repeated
   * until it is empty (a process forking meanwhile is caught on the next pass). Resolves with how many it found.
   */
  kill(graceMs: number): Promise<number>;
  /** Moves every process in it to `other` (a user's other session on the instance takes over what this one left). */
  moveTo(other: SessionCgroup): void;
  /** Removes its folders (retrying while the last processes finish exiting); a no-op once gone. */
  remove(): Promise<void>;
}

/** Bound on how long a kill keeps sweeping a cgroup that still has processes, in milliseconds. */
const KILL_SWEEP_MS = 5_000;
const CPU_PERIOD_US = 100_000;

/**
 * Finds the cgroup hierarchies of this host and the agent's place in them, from `/proc/self/mountinfo` and
 * `/proc/self/cgroup`. v1 is used when the memory, cpu or pids controller is mounted as v1; otherwise v2 when a
 * unified hierarchy offers one of them; otherwise `undefined` (no per-session cgroups: a container without
 * cgroupfs, or a host that is not Linux).
 *
 * @example
 * const host = detectCgroups(); // { version: 1, dirs: { memory: '/sys/fs/cgroup/memory/…', cpu: …, pids: … } }
 */
export function detectCgroups(proc = '/proc'): CgroupHost | undefined {
  let mountinfo: string;
  let membership: string;
  try {
    mountinfo = readFileSync(path.join(proc, 'self/mountinfo'), 'utf8');
    membership = readFileSync(path.join(proc, 'self/cgroup'), 'utf8');
  } catch {
    return undefined;
  }
  // /proc/self/cgroup: "4:memory:/a/b" (v1, controllers comma-separated) and "0::/a/b" (v2).
  const own = new Map<string, string>();
  for (const line of membership.split('\n')) {
    const match = /^\d+:([^:]*):(.*)$/.exec(line);
    if (!match) continue;
    for (const name of (match[1] ?? '').split(',')) own.set(name, match[2] ?? '/');
  }
  const v1: Partial<Record<CgroupController, string>> = {};
  let unified: { mount: string; root: string } | undefined;
  for (const line of mountinfo.split('\n')) {
    // "<id> <parent> <maj:min> <root> <mountpoint> <opts> [optional…] - <fstype> <source> <super opts>"
    const [left, right] = line.split(' - ');
    if (left === undefined || right === undefined) continue;
    const fields = left.split(' ');
    const [fstype, , superOpts] = right.split(' ');
    const root = unescapeMount(fields[3] ?? '/');
    const mount = unescapeMount(fields[4] ?? '');
    if (fstype === 'cgroup') {
      const options = (superOpts ?? '').split(',');
      for (const controller of CONTROLLERS) {
        const ownPath = own.get(controller);
        if (options.includes(controller) && ownPath !== undefined && v1[controller] === undefined) v1[controller] = within(mount, root, ownPath);
      }
    } else if (fstype === 'cgroup2' && own.has('')) {
      unified ??= { mount, root };
      if (mount === '/sys/fs/cgroup') unified = { mount, root };
    }
  }
  if (Object.keys(v1).length > 0) return { version: 1, dirs: v1 };
  if (unified === undefined) return undefined;
  const dir = within(unified.mount, unified.root, own.get('') ?? '/');
  const controllers = readControllers(dir);
  return controllers.length > 0 ? { version: 2, dir, controllers } : undefined;
}

/**
 * The instance's cgroup name: its id plus a hash of its scratch dir, so two pools on one host (or two test runs)
 * that both have an instance `i-1` never share (or kill) each other's cgroups. The agent and the local provider
 * both compute it.
 *
 * @example
 * instanceCgroupName('i-1', '/var/lib/dspool/instances/i-1'); // 'i-1-3f2a9c1d'
 */
export function instanceCgroupName(instanceId: string, scratchDir: string): string {
  const hash = createHash('sha256').update(path.resolve(scratchDir)).digest('hex').slice(0, 8);
  return `${instanceId.replace(/[^A-Za-z0-9_.-]/g, '_')}-${hash}`;
}

/**
 * The instance's cgroup folders (one per v1 hierarchy, one on v2), whether or not they exist yet.
 *
 * @example
 * instanceCgroupDirs({ version: 2, dir: '/sys/fs/cgroup/system.slice/dspool-agent.service', controllers: ['memory'] }, 'i-1-3f2a9c01');
 * // ['/sys/fs/cgroup/system.slice/dspool-agent.service/dspool/i-1-3f2a9c01']
 */
export function instanceCgroupDirs(host: CgroupHost, instance: string): string[] {
  return baseDirs(host).map((base) => path.join(base, 'dspool', instance));
}

/**
 * Makes the instance's cgroup folder (v2: with the controllers handed down to it), so a host that cannot give
 * sessions their cgroups is found at agent start rather than at a user's first start. Throws `CgroupSetupError`.
 *
 * @example
 * prepareInstanceCgroup(host, instanceCgroupName('i-1', dir));
 */
export function prepareInstanceCgroup(host: CgroupHost, instance: string): void {
  try {
    if (host.version === 1) {
      for (const dir of instanceCgroupDirs(host, instance)) mkdirSync(dir, { recursive: true });
      return;
    }
    for (const dir of [host.dir, path.join(host.dir, 'dspool'), path.join(host.dir, 'dspool', instance)]) {
      mkdirSync(dir, { recursive: true });
      enableControllers(dir, host.controllers);
    }
  } catch (error) {
    if (error instanceof CgroupSetupError) throw error;
    throw new CgroupSetupError(instance, (error as Error).message, { cause: error });
  }
}

/**
 * Creates (or takes over, after an agent restart) the cgroup of one session with its limits. On v2 it first hands
 * the controllers down from the agent's cgroup to the session's parent; that fails (`CgroupSetupError`) when the
 * agent's own cgroup holds processes and is not the root — run the agent in a delegated cgroup of its own
 * (systemd `Delegate=yes`).
 *
 * @example
 * const cg = createSessionCgroup(host, instanceCgroupName('i-1', dir), 's-42', { memoryBytes: 2 ** 30, cpu: 2, pids: 4096 });
 * spawnAsUser({ …, cgroupProcs: cg.procsFiles });
 * await cg.kill(5_000); await cg.remove();
 */
export function createSessionCgroup(host: CgroupHost, instance: string, sessionId: string, limits: CgroupLimits): SessionCgroup {
  const name = `session-${sessionId.replace(/[^A-Za-z0-9_.-]/g, '_')}`;
  try {
    if (host.version === 1) {
      const dirs: string[] = [];
      for (const controller of CONTROLLERS) {
        const base = host.dirs[controller];
        if (base === undefined) continue;
        const dir = path.join(base, 'dspool', instance, name);
        mkdirSync(dir, { recursive: true });
        writeLimitsV1(controller, dir, limits);
        // Controllers mounted together (memory and cpu in one hierarchy) share one folder.
        if (!dirs.includes(dir)) dirs.push(dir);
      }
      return sessionCgroup(dirs, undefined);
    }
    const parents = [host.dir, path.join(host.dir, 'dspool'), path.join(host.dir, 'dspool', instance)];
    for (const parent of parents) {
      mkdirSync(parent, { recursive: true });
      enableControllers(parent, host.controllers);
    }
    const dir = path.join(host.dir, 'dspool', instance, name);
    mkdirSync(dir, { recursive: true });
    writeLimitsV2(dir, host.controllers, limits);
    return sessionCgroup([dir], path.join(dir, 'cgroup.kill'));
  } catch (error) {
    if (error instanceof CgroupSetupError) throw error;
    throw new CgroupSetupError(sessionId, (error as Error).message, { cause: error });
  }
}

/**
 * Ends everything in an instance's cgroup tree (every session's processes) and removes its folders; used when the
 * instance goes (agent close, local provider delete). Resolves with how many processes it found.
 *
 * @example
 * await killInstanceCgroup(host, instanceCgroupName('i-1', dir), 2_000);
 */
export async function killInstanceCgroup(host: CgroupHost, instance: string, graceMs: number): Promise<number> {
  const roots = instanceCgroupDirs(host, instance).filter((dir) => existsSync(dir));
  if (roots.length === 0) return 0;
  const tree = roots.flatMap(subtree);
  const killFile = host.version === 2 ? path.join(roots[0] ?? '', 'cgroup.kill') : undefined;
  const found = await killDirs(tree, graceMs, killFile);
  // Leaves first: a folder with child folders cannot be removed.
  await removeDirs(tree.sort((a, b) => b.length - a.length));
  return found;
}

/** The cgroup folders of `dir` and below it, `dir` first. */
function subtree(dir: string): string[] {
  const out = [dir];
  try {
    for (const entry of readdirSync(dir, { withFileTypes: true })) if (entry.isDirectory()) out.push(...subtree(path.join(dir, entry.name)));
  } catch {
    // gone meanwhile
  }
  return out;
}

function sessionCgroup(dirs: string[], killFile: string | undefined): SessionCgroup {
  return {
    dirs,
    procsFiles: dirs.map((dir) => path.join(dir, 'cgroup.procs')),
    pids: () => livePids(dirs),
    kill: (graceMs) => killDirs(dirs, graceMs, killFile),
    moveTo(other) {
      for (let pass = 0; pass < 10; pass++) {
        const pids = livePids(dirs);
        if (pids.length === 0) return;
        for (const pid of pids) {
          for (const file of other.procsFiles) {
            try {
              writeFileSync(file, `${pid}\n`);
            } catch {
              // exited meanwhile
            }
          }
        }
      }
    },
    remove: () => removeDirs(dirs),
  };
}

async function killDirs(dirs: string[], graceMs: number, killFile: string | undefined): Promise<number> {
  const seen = new Set<number>();
  const sweep = (signal: NodeJS.Signals): number[] => {
    const pids = livePids(dirs);
    for (const pid of pids) {
      // SIGTERM once per process (a second one can cut a graceful shutdown short); SIGKILL every pass.
      if (signal === 'SIGKILL' || !seen.has(pid)) sendSignal(pid, signal);
      seen.add(pid);
    }
    return pids;
  };
  if (sweep('SIGTERM').length === 0) return 0;
  const graceDeadline = Date.now() + graceMs;
  while (Date.now() < graceDeadline && sweep('SIGTERM').length > 0) await sleep(50);
  const deadline = Date.now() + KILL_SWEEP_MS;
  for (;;) {
    if (killFile !== undefined && existsSync(killFile)) {
      try {
        writeFileSync(killFile, '1');
      } catch {
        // older kernel: the sweep below does it
      }
    }
    if (sweep('SIGKILL').length === 0 || Date.now() > deadline) break;
    await sleep(25);
  }
  return seen.size;
}

async function removeDirs(dirs: readonly string[]): Promise<void> {
  for (const dir of dirs) {
    for (let attempt = 0; ; attempt++) {
      try {
        rmdirSync(dir);
        break;
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        // EBUSY while the last killed processes finish exiting.
        if (attempt >= 40) throw new CgroupSetupError(path.basename(dir), `cannot remove ${dir}: ${code ?? (error as Error).message}`, { cause: error });
        await sleep(50);
      }
    }
  }
}

/** PIDs listed in the folders' `cgroup.procs` that are alive (not zombies), without duplicates. */
function livePids(dirs: readonly string[]): number[] {
  const pids = new Set<number>();
  for (const dir of dirs) {
    let text: string;
    try {
      text = readFileSync(path.join(dir, 'cgroup.procs'), 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
  }
  return [...pids].filter(pidAlive);
}

function writeLimitsV1(controller: CgroupController, dir: string, limits: CgroupLimits): void {
  if (controller === 'memory') {
    const bytes = limits.memoryBytes > 0 ? String(Math.floor(limits.memoryBytes)) : '-1';
    writeFileSync(path.join(dir, 'memory.limit_in_bytes'), bytes);
    // Swap would otherwise let a session go past its limit; not every kernel accounts it (swapaccount=1).
    const memsw = path.join(dir, 'memory.memsw.limit_in_bytes');
    if (existsSync(memsw)) writeFileSync(memsw, bytes);
  } else if (controller === 'cpu') {
    writeFileSync(path.join(dir, 'cpu.cfs_period_us'), String(CPU_PERIOD_US));
    writeFileSync(path.join(dir, 'cpu.cfs_quota_us'), limits.cpu > 0 ? String(cpuQuotaUs(limits.cpu)) : '-1');
  } else {
    writeFileSync(path.join(dir, 'pids.max'), limits.pids > 0 ? String(Math.floor(limits.pids)) : 'max');
  }
}

function writeLimitsV2(dir: string, controllers: readonly CgroupController[], limits: CgroupLimits): void {
  if (controllers.includes('memory')) {
    writeFileSync(path.join(dir, 'memory.max'), limits.memoryBytes > 0 ? String(Math.floor(limits.memoryBytes)) : 'max');
    const swap = path.join(dir, 'memory.swap.max');
    if (existsSync(swap)) writeFileSync(swap, limits.memoryBytes > 0 ? '0' : 'max');
  }
  if (controllers.includes('cpu')) writeFileSync(path.join(dir, 'cpu.max'), limits.cpu > 0 ? `${cpuQuotaUs(limits.cpu)} ${CPU_PERIOD_US}` : `max ${CPU_PERIOD_US}`);
  if (controllers.includes('pids')) writeFileSync(path.join(dir, 'pids.max'), limits.pids > 0 ? String(Math.floor(limits.pids)) : 'max');
}

/** The kernel refuses a quota under 1 ms. */
function cpuQuotaUs(cores: number): number {
  return Math.max(1_000, Math.round(cores * CPU_PERIOD_US));
}

/** Hands `controllers` down to `dir`'s children (v2 `cgroup.subtree_control`), only those not already handed down. */
function enableControllers(dir: string, controllers: readonly CgroupController[]): void {
  const file = path.join(dir, 'cgroup.subtree_control');
  const enabled = readWords(file);
  const missing = controllers.filter((c) => !enabled.includes(c));
  if (missing.length === 0) return;
  try {
    writeFileSync(file, missing.map((c) => `+${c}`).join(' '));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'EBUSY'
        ? `${dir} holds processes, so it cannot hand controllers down (cgroup v2 "no internal processes"): run the agent in a delegated cgroup of its own`
        : `cannot enable ${missing.join(', ')} in ${file}: ${code ?? (error as Error).message}`;
    throw new CgroupSetupError(path.basename(dir), why, { cause: error });
  }
}

function readControllers(dir: string): CgroupController[] {
  const available = readWords(path.join(dir, 'cgroup.controllers'));
  return CONTROLLERS.filter((c) => available.includes(c));
}

function readWords(file: string): string[] {
  try {
    return readFileSync(file, 'utf8').split(/\s+/).filter(Boolean);
  } catch {
    return [];
  }
}

function baseDirs(host: CgroupHost): string[] {
  if (host.version === 2) return [host.dir];
  return [...new Set(CONTROLLERS.map((c) => host.dirs[c]).filter((d): d is string => d !== undefined))];
}

/** Where cgroup path `own` lies under a mount of the hierarchy whose root is `root`. */
function within(mount: string, root: string, own: string): string {
  const relative = root !== '/' && (own === root || own.startsWith(`${root}/`)) ? own.slice(root.length) : own;
  return path.join(mount, relative).replace(/(.)\/+$/, '$1');
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMount(text: string): string {
  return text.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}
