// The exec path for a `SpawnSpec`: every process of a user's session that the agent starts (Jupyter, SSH shells and
// commands, sftp-server) goes through here, so each gets the same cgroup, groups, IDs, umask, environment and cwd.
//
// Node's `spawn({ uid, gid })` sets the IDs but drops every supplementary group, and cannot join a cgroup or set a
// umask for the child alone. So, as root, the child is a tiny /bin/sh script (no user code) that writes its own PID
// to the session's `cgroup.procs` files, sets the umask and execs util-linux `setpriv` (UID, GID, groups), which execs
// coreutils `env -C <cwd>` (the folder is entered as the user, so a folder closed to them fails the start), which
// execs the program. The PID stays the same throughout: the caller's child *is* the program.
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { SpawnToolMissingError } from './errors.js';
import type { SpawnSpec } from './spawn-spec.js';

/** What to exec for a spec (the same for `child_process.spawn` and `node-pty`). */
export interface SpawnPlan {
  readonly file: string;
  readonly args: string[];
  readonly env: Record<string, string>;
  /** Where the wrapper starts (`/` as root: the real cwd is entered after the IDs are dropped). */
  readonly cwd: string;
}

/** `$0` of the wrapper, as seen in `ps` for the instant before it execs. */
const ARGV0 = 'dspool-spawn';

// As root. Arguments: <n> <procs…n> <umask> <uid> <gid> <groups flag> <cwd> <file> <args…>
const ROOT_SCRIPT = [
  'n=$1; shift',
  'while [ "$n" -gt 0 ]; do echo $$ > "$1" || exit 125; shift; n=$((n-1)); done',
  'umask "$1" || exit 125',
  'setpriv=$2 envtool=$3 uid=$4 gid=$5 groups=$6 dir=$7; shift 7',
  // dash adds these; the child's environment is exactly the spec's, plus the PWD every shell sets.
  'unset OLDPWD; PWD=$dir; export PWD',
  'exec "$setpriv" --reuid="$uid" --regid="$gid" "$groups" -- "$envtool" -C "$dir" -- "$@"',
].join('\n');

// Not root: the agent's own account; only the umask is the wrapper's job.
const USER_SCRIPT = ['umask "$1" || exit 125', 'shift', 'unset OLDPWD', 'exec "$@"'].join('\n');

let tools: { setpriv: string; env: string } | undefined;

/** Absolute paths of setpriv and env (the user's PATH is not trusted for them); throws when one is missing. */
function rootTools(): { setpriv: string; env: string } {
  tools ??= { setpriv: findTool('setpriv', 'util-linux'), env: findTool('env', 'coreutils') };
  return tools;
}

function findTool(name: string, debianPackage: string): string {
  const candidates = ['/usr/bin', '/bin', '/usr/sbin', '/sbin'].map((dir) => `${dir}/${name}`);
  for (const candidate of candidates) {
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // next
    }
  }
  throw new SpawnToolMissingError(name, debianPackage, candidates);
}

/**
 * The command line that starts `spec` with all its properties: as root (`spec.uid` set) the cgroup-joining,
 * privilege-dropping wrapper; otherwise the program under a umask-setting shell, as the agent's own user.
 *
 * @example
 * const plan = spawnPlan(spec);
 * pty.spawn(plan.file, plan.args, { env: plan.env, cwd: plan.cwd, cols: 80, rows: 24 });
 */
export function spawnPlan(spec: SpawnSpec): SpawnPlan {
  const env = { ...spec.env };
  const umask = spec.umask.toString(8).padStart(4, '0');
  if (spec.uid === undefined) {
    return { file: '/bin/sh', args: ['-c', USER_SCRIPT, ARGV0, umask, spec.file, ...spec.args], env, cwd: spec.cwd };
  }
  const { setpriv, env: envTool } = rootTools();
  const gid = spec.gid ?? spec.uid;
  const groups = spec.groups && spec.groups.length > 0 ? `--groups=${spec.groups.join(',')}` : '--clear-groups';
  const args = [
    '-c',
    ROOT_SCRIPT,
    ARGV0,
    String(spec.cgroupProcs.length),
    ...spec.cgroupProcs,
    umask,
    setpriv,
    envTool,
    String(spec.uid),
    String(gid),
    groups,
    spec.cwd,
    spec.file,
    ...spec.args,
  ];
  return { file: '/bin/sh', args, env, cwd: '/' };
}

/** Options of `spawnAsUser` besides the spec. */
export interface SpawnAsUserOptions {
  /** @default ['ignore', 'pipe', 'pipe'] */
  readonly stdio?: StdioOptions;
  /** A session of its own (setsid), so it and what it starts can be hung up together. @default false */
  readonly detached?: boolean;
}

/**
 * Starts one process of a user's session as `spec` describes (see `spawnPlan`). The returned child's PID is the
 * program's; a wrapper step that fails (cgroup write, unknown folder) exits 125 with the reason on stderr.
 *
 * @example
 * const child = spawnAsUser({ file: '/usr/bin/jupyter-notebook', args, env, cwd: home, uid, gid, groups,
 *   umask: 0o077, cgroupProcs: cgroup.procsFiles });
 */
export function spawnAsUser(spec: SpawnSpec, options: SpawnAsUserOptions = {}): ChildProcess {
  const plan = spawnPlan(spec);
  return spawn(plan.file, plan.args, {
    cwd: plan.cwd,
    env: plan.env,
    stdio: options.stdio ?? ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
}
