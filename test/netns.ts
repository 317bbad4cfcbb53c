// Network namespaces made by a test: each "host" gets its own namespace, joined to this machine by a veth pair
// with a /30 from 198.18.0.0/15 (the benchmarking range; nothing else is ever used). Stopped by name after.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { rand } from './harness.js';

/** One namespace and its link to this machine. */
export interface Netns {
  /** `ip netns` name. */
  readonly name: string;
  /** This machine's end of the link (an address in this namespace's /30). */
  readonly hostAddress: string;
  /** The namespace's own address. */
  readonly address: string;
  /** The veth end on this machine (down = the host is cut off, its processes untouched). */
  readonly hostLink: string;
}

function ip(args: readonly string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** A /30 of 198.18.0.0/15 no address on this machine is in yet (other suites make namespaces too). */
function freeSubnet(): [string, string] {
  const used = execFileSync('ip', ['-4', '-o', 'addr', 'show'], { encoding: 'utf8' });
  for (let attempt = 0; attempt < 200; attempt++) {
    const second = 18 + Math.floor(Math.random() * 2);
    const third = Math.floor(Math.random() * 256);
    const fourth = Math.floor(Math.random() * 64) * 4;
    const prefix = `198.${second}.${third}.`;
    const taken = [1, 2].some((n) => used.includes(` ${prefix}${fourth + n}/`));
    if (!taken) return [`${prefix}${fourth + 1}`, `${prefix}${fourth + 2}`];
  }
  throw new Error('no free /30 in 198.18.0.0/15');
}

/**
 * Makes a namespace with loopback up and a veth pair to this machine.
 *
 * @example
 * const host = makeNetns(); // { name: 'dsp-ab12cd', hostAddress: '198.18.7.1', address: '198.18.7.2', … }
 */
export function makeNetns(): Netns {
  const id = rand();
  const name = `dsp-${id}`;
  const hostLink = `vh${id}`;
  const inner = `vn${id}`;
  const [hostAddress, address] = freeSubnet();
  ip(['netns', 'add', name]);
  try {
    ip(['link', 'add', hostLink, 'type', 'veth', 'peer', 'name', inner]);
    ip(['link', 'set', inner, 'netns', name]);
    ip(['addr', 'add', `${hostAddress}/30`, 'dev', hostLink]);
    ip(['link', 'set', hostLink, 'up']);
    ip(['-n', name, 'addr', 'add', `${address}/30`, 'dev', inner]);
    ip(['-n', name, 'link', 'set', inner, 'up']);
    ip(['-n', name, 'link', 'set', 'lo', 'up']);
    ip(['-n', name, 'route', 'add', 'default', 'via', hostAddress]);
  } catch (error) {
    removeNetns({ name, hostLink, hostAddress, address });
    throw error;
  }
  return { name, hostAddress, address, hostLink };
}

/** Cuts (down) or restores (up) the host's link; its processes keep running. */
export function setLink(ns: Netns, up: boolean): void {
  ip(['link', 'set', ns.hostLink, up ? 'up' : 'down']);
}

/** Removes the namespace and its link. */
export function removeNetns(ns: Netns): void {
  spawnSync('ip', ['link', 'del', ns.hostLink], { stdio: 'ignore' });
  spawnSync('ip', ['netns', 'del', ns.name], { stdio: 'ignore' });
}

/** True when this machine can make namespaces (root, iproute2). */
export function canMakeNetns(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (ip netns, veth pairs)';
  const probe = spawnSync('ip', ['netns', 'list'], { stdio: 'ignore' });
  return probe.status === 0 ? undefined : 'ip netns does not work here';
}

/**
 * A copy of this machine's /etc at `dir` (without other suites' `dspool-team` group, `extraPasswd` appended to its
 * passwd), for a "host" of its own accounts: bind it over /etc in a mount namespace (`withPrivateEtc`).
 */
export function privateEtc(dir: string, extraPasswd = ''): string {
  const etc = join(dir, 'etc');
  execFileSync('cp', ['-a', '/etc', etc]);
  for (const file of ['group', 'gshadow']) {
    const path = join(etc, file);
    if (existsSync(path)) writeFileSync(path, readFileSync(path, 'utf8').split('\n').filter((l) => !l.startsWith('dspool-team:')).join('\n'));
  }
  if (extraPasswd) writeFileSync(join(etc, 'passwd'), `${readFileSync(join(etc, 'passwd'), 'utf8')}${extraPasswd}`);
  return etc;
}

/** The argv that runs `command` in namespace `ns` with `etc` bound over /etc (its own mount namespace). */
export function inHost(ns: Netns, etc: string, command: readonly string[]): [string, string[]] {
  return ['nsenter', [`--net=/run/netns/${ns.name}`, 'unshare', '--mount', '--propagation', 'private', 'sh', '-c', 'mount --bind "$0" /etc && exec "$@"', etc, ...command]];
}

/**
 * Processes of `uid` inside a host's namespace (what the host still runs for that user).
 *
 * @example
 * userProcesses(host, 40123).length; // 0 once the user's server there is gone
 */
export function userProcesses(ns: Netns, uid: number): number[] {
  return spawnSync('ip', ['netns', 'pids', ns.name], { encoding: 'utf8' }).stdout.split('\n').map(Number).filter((pid) => {
    try {
      return pid > 0 && readFileSync(`/proc/${pid}/status`, 'utf8').includes(`\nUid:\t${uid}\t`);
    } catch {
      return false;
    }
  });
}
