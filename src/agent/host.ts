// What the agent reports about its machine: capacity, load, whether it can take sessions.
import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AgentSettings, Capacity, GpuDevice, Load } from '../protocol/agent.js';

/**
 * True when the agent runs as root, so servers run as each user's own account.
 *
 * @example
 * const asRoot = isRoot(); // true under systemd as root, false for `dspool agent` run by hand
 */
export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/**
 * The machine's own address for `address: auto`: its first non-loopback IPv4 address (interfaces in name order),
 * or undefined when it has none.
 *
 * @example
 * ownAddress(); // '198.18.4.2'
 */
export function ownAddress(interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()): string | undefined {
  for (const name of Object.keys(interfaces).sort()) {
    for (const info of interfaces[name] ?? []) if (info.family === 'IPv4' && !info.internal) return info.address;
  }
  return undefined;
}

/**
 * The machine's size as reported in `hello`, with the GPUs `detectGpus` found.
 *
 * @example
 * capacity(await detectGpus(settings.gpuCommand, settings.jupyter.path));
 * // { cpus: 16, memoryBytes: 134_217_728_000, gpus: 1, gpuDevices: [ … ] }
 */
export function capacity(gpus: readonly GpuDevice[] = []): Capacity {
  return { cpus: os.cpus().length, memoryBytes: os.totalmem(), gpus: gpus.length, ...(gpus.length > 0 ? { gpuDevices: [...gpus] } : {}) };
}

/** How long nvidia-smi may take before the instance is reported without GPUs, in ms. */
const GPU_DETECT_TIMEOUT_MS = 10_000;

/**
 * Parses `nvidia-smi --query-gpu=index,name,memory.total --format=csv,noheader` output; lines that do not
 * parse are skipped.
 *
 * @example
 * parseGpuList('0, NVIDIA H100 80GB HBM3, 81559 MiB\n'); // [{ index: 0, name: 'NVIDIA H100 80GB HBM3', memoryBytes: 85521956864 }]
 */
export function parseGpuList(text: string): GpuDevice[] {
  const devices: GpuDevice[] = [];
  for (const line of text.split('\n')) {
    const parts = line.split(',').map((part) => part.trim());
    if (parts.length < 3) continue;
    const index = Number(parts[0]);
    const memory = /^(\d+(?:\.\d+)?)\s*(MiB|GiB|KiB)?$/i.exec(parts[parts.length - 1] ?? '');
    if (!Number.isInteger(index) || index < 0 || !memory) continue;
    const unit = { kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30 }[(memory[2] ?? 'MiB').toLowerCase() as 'mib'];
    devices.push({ index, name: parts.slice(1, -1).join(', '), memoryBytes: Math.round(Number(memory[1]) * unit) });
  }
  return devices;
}

/**
 * Lists NVIDIA GPUs with nvidia-smi; no command, a missing binary or a failing one means no GPUs (never throws).
 *
 * @example
 * await detectGpus('/usr/bin/nvidia-smi', '/usr/bin:/bin'); // [{ index: 0, name: 'NVIDIA H100…', memoryBytes: … }]
 */
export async function detectGpus(command: string | null | undefined, searchPath: string): Promise<GpuDevice[]> {
  if (!command) return [];
  const executable = await findExecutable(command, searchPath);
  if (!executable) return [];
  return new Promise((resolve) => {
    execFile(
      executable,
      ['--query-gpu=index,name,memory.total', '--format=csv,noheader'],
      { timeout: GPU_DETECT_TIMEOUT_MS, encoding: 'utf8' },
      (error, stdout) => resolve(error ? [] : parseGpuList(stdout)),
    );
  });
}

/**
 * The machine's load as reported in every `heartbeat`.
 *
 * @example
 * load(); // { cpu: 0.25, memoryUsedBytes: 8_589_934_592, memoryTotalBytes: 34_359_738_368 }
 */
export function load(): Load {
  const cores = Math.max(1, os.cpus().length);
  const total = os.totalmem();
  return {
    cpu: Math.max(0, (os.loadavg()[0] ?? 0) / cores),
    memoryUsedBytes: Math.max(0, total - os.freemem()),
    memoryTotalBytes: total,
  };
}

/**
 * Resolves a command to an executable file: absolute or relative paths as given, bare names through `searchPath`.
 * Returns `undefined` when nothing executable is found.
 *
 * @example
 * await findExecutable('jupyter-notebook', '/usr/bin:/bin'); // '/usr/bin/jupyter-notebook'
 */
export async function findExecutable(command: string, searchPath: string): Promise<string | undefined> {
  const candidates = command.includes('/') ? [command] : searchPath.split(':').filter(Boolean).map((dir) => path.join(dir, command));
  for (const candidate of candidates) {
    try {
      const info = await stat(candidate);
      if (!info.isFile()) continue;
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return undefined;
}

/** Results of the checks reported in `hello`. */
export interface HostChecks {
  share: boolean;
  jupyter: boolean;
  /** False when this machine's accounts clash with the pool's IDs; absent when not checked (no `knownUsers`). */
  identity?: boolean;
  detail?: string;
}

/**
 * Where this machine's /etc/passwd and /etc/group give a pool user's UID or GID to another name, one sentence each.
 *
 * @example
 * identityClashes([{ name: 'alice', uid: 20001, gid: 20001 }], 'mallory:x:20001:20001::/home/mallory:/bin/sh\n', '');
 * // ['UID 20001 belongs to "mallory" on this machine, but the pool gave it to "alice"']
 */
export function identityClashes(users: ReadonlyArray<{ name: string; uid: number; gid: number }>, passwd: string, group: string): string[] {
  const byId = (text: string): Map<number, string> => {
    const out = new Map<number, string>();
    for (const line of text.split('\n')) {
      const [name, , id] = line.split(':');
      if (name && id !== undefined && /^\d+$/.test(id)) out.set(Number(id), name);
    }
    return out;
  };
  const uids = byId(passwd);
  const gids = byId(group);
  const clashes: string[] = [];
  for (const user of users) {
    const owner = uids.get(user.uid);
    if (owner !== undefined && owner !== user.name) clashes.push(`UID ${user.uid} belongs to "${owner}" on this machine, but the pool gave it to "${user.name}"`);
    const groupOwner = gids.get(user.gid);
    if (groupOwner !== undefined && groupOwner !== user.name) clashes.push(`GID ${user.gid} belongs to group "${groupOwner}" on this machine, but the pool gave it to "${user.name}"`);
  }
  return clashes;
}

/**
 * Checks that the share is a writable directory and the Jupyter command exists and is executable. With `share` (the
 * share keeper's status, when the agent mounts the share) the share is not touched here.
 *
 * @example
 * const checks = await runChecks(settings); // { share: true, jupyter: true }
 */
export async function runChecks(
  settings: Pick<AgentSettings, 'sharePath' | 'jupyter' | 'knownUsers'>,
  share?: { readonly ok: boolean; readonly detail?: string },
): Promise<HostChecks> {
  const problems: string[] = [];
  let identity: boolean | undefined;
  if (settings.knownUsers) {
    const [passwd, group] = await Promise.all([readFile('/etc/passwd', 'utf8').catch(() => ''), readFile('/etc/group', 'utf8').catch(() => '')]);
    const clashes = identityClashes(settings.knownUsers, passwd, group);
    identity = clashes.length === 0;
    if (!identity) problems.push(`this machine's accounts clash with the pool's: ${clashes.join('; ')}`);
  }
  let shareOk = false;
  if (share) {
    // A mounted share (share.mount) is checked by its keeper, never here: a stale network mount can hang a stat.
    shareOk = share.ok;
    if (!share.ok) problems.push(share.detail ?? `share ${settings.sharePath} is not usable`);
  } else {
    try {
      const info = await stat(settings.sharePath);
      if (!info.isDirectory()) throw new Error('not a directory');
      await access(settings.sharePath, constants.W_OK);
      shareOk = true;
    } catch (error) {
      problems.push(`share ${settings.sharePath} is not a writable directory (${(error as Error).message})`);
    }
  }
  const command = settings.jupyter.command[0] ?? '';
  const jupyter = (await findExecutable(command, settings.jupyter.path)) !== undefined;
  if (!jupyter) problems.push(`Jupyter command "${command}" not found or not executable`);
  const checked = identity === undefined ? { share: shareOk, jupyter } : { share: shareOk, jupyter, identity };
  return problems.length > 0 ? { ...checked, detail: problems.join('; ') } : checked;
}
