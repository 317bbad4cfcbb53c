// The one description of "a process of a user's session" on an instance: what the agent asks for whenever it starts
// anything for a user (their Jupyter server, a kernel, an SSH shell, sftp-server). Both ways of starting one — a
// plain exec from the agent and a fork of the instance's pre-imported fork server — take this same spec and must
// give the child exactly these properties, so every isolation guarantee holds whichever path ran.

/**
 * How to start one process of a user's session.
 *
 * @example
 * const spec: SpawnSpec = {
 *   file: '/usr/bin/jupyter-notebook', args: ['--no-browser'], env: { HOME: '/share/users/alice/home' },
 *   cwd: '/share/users/alice/home', uid: 20001, gid: 20001, groups: [20001, 19999], umask: 0o077,
 *   cgroupProcs: ['/sys/fs/cgroup/memory/dspool/i-1/s-1/cgroup.procs'],
 * };
 */
export interface SpawnSpec {
  /** Absolute path of the program. */
  readonly file: string;
  /** Arguments after argv[0]. Never a secret: secrets go through `env`. */
  readonly args: readonly string[];
  /** The child's whole environment (nothing is inherited from the agent). */
  readonly env: Readonly<Record<string, string>>;
  /** Working directory, entered after the IDs are dropped (so a folder closed to the user fails the start). */
  readonly cwd: string;
  /** Real and effective UID; absent when the agent is not root (the child runs as the agent's own user). */
  readonly uid?: number;
  /** Real and effective GID; absent when the agent is not root. */
  readonly gid?: number;
  /** Supplementary groups (the user's own group and the pool's team group); absent when the agent is not root. */
  readonly groups?: readonly number[];
  /** File mode creation mask. @default 0o077 (what a user makes is theirs alone unless they say otherwise) */
  readonly umask: number;
  /**
   * `cgroup.procs` files the child joins before it runs any user code (one per cgroup v1 controller hierarchy, or the
   * one v2 file). Empty: no per-session cgroup (not root, or no cgroup controllers on this host).
   */
  readonly cgroupProcs: readonly string[];
}
