// What counts as work in a session on this instance (idle means "no work", never "no traffic"): kernels executing,
// terminals and SSH sessions running a foreground job, and keyboard input. Open connections, reconnects and
// polling never count.
import { procStat } from '../lib/process.js';
import type { ServerWork } from '../protocol/agent.js';
import type { SshSessionInfo } from './ssh/index.js';

/** A kernel as notebook 6's `api/kernels` lists it (with the agent's activity patch, when applied). */
export interface KernelModel {
  readonly execution_state?: string;
  readonly dspool_executing?: boolean;
  readonly dspool_last_work?: string | null;
}

/** A terminal as notebook 6's `api/terminals` lists it (with the agent's activity patch, when applied). */
export interface TerminalModel {
  readonly dspool_foreground?: boolean;
  readonly dspool_last_input?: string | null;
}

/**
 * True when the pseudo-terminal of session leader `pid` has a foreground process group other than the leader's
 * own: the shell started a job in the foreground (`sleep 600`, a training script) and waits for it. Reads
 * `/proc/<pid>/stat` (pgrp and tpgid); false when the process is gone or has no terminal.
 *
 * @example
 * ptyForeground(shell.pid); // true while `sleep 600` runs in that shell
 */
export function ptyForeground(pid: number): boolean {
  const stat = procStat(pid);
  return stat !== undefined && Number.isInteger(stat.tpgid) && stat.tpgid > 0 && stat.tpgid !== stat.pgrp;
}

const BARE_SHELL = /^\s*(?:exec\s+)?(?:\/\S*\/)?(?:ba|da|z|k|fi|tc|c)?sh(?:\s+-[a-z]+)*\s*$/;

/**
 * True for a command that is only a shell reading its script from stdin (`bash`, `/bin/sh -s`): how VS Code
 * Remote-SSH and similar tools run their agents. Such a session counts as work only through a foreground job on
 * a terminal, never by merely running.
 *
 * @example
 * isBareShell('bash');            // true
 * isBareShell('python train.py'); // false
 */
export function isBareShell(command: string): boolean {
  return BARE_SHELL.test(command);
}

/**
 * The work of a user's SSH sessions: ptys with a foreground job, commands that run (not a bare shell), and the
 * last keystroke on a pty. Data on a non-interactive channel (a script fed to a shell, sftp, forwards) is not
 * input a person typed.
 *
 * @example
 * sshWork(server.sessions().filter((s) => s.user === 'alice'), Date.now());
 */
export function sshWork(sessions: readonly SshSessionInfo[], nowMs: number, foreground: (pid: number) => boolean = ptyForeground): ServerWork {
  let busy = 0;
  let last = 0;
  for (const session of sessions) {
    if (session.kind === 'sftp') continue;
    const runsCommand = session.kind === 'exec' && session.command !== undefined && !isBareShell(session.command);
    if (runsCommand || (session.pty && foreground(session.pid))) busy++;
    if (session.pty && session.lastInputAt.getTime() > session.startedAt.getTime()) last = Math.max(last, session.lastInputAt.getTime());
  }
  if (busy > 0) last = Math.max(last, nowMs);
  return { kernelsExecuting: 0, foreground: busy, ...(last > 0 ? { lastWork: new Date(last).toISOString() } : {}) };
}

/**
 * The work of a Jupyter server from its kernels and terminals. With the activity patch, a kernel counts while it
 * executes code a person sent and a terminal while it has a foreground job; without it (another server), a kernel
 * counts while `busy`. `nowMs` stamps work running now.
 *
 * @example
 * jupyterWork(await get('kernels'), await get('terminals'), Date.now());
 */
export function jupyterWork(kernels: readonly KernelModel[], terminals: readonly TerminalModel[], nowMs: number): ServerWork {
  let executing = 0;
  let busyTerminals = 0;
  let last = 0;
  const seen = (iso: string | null | undefined): void => {
    const at = iso ? Date.parse(iso) : Number.NaN;
    if (Number.isFinite(at)) last = Math.max(last, at);
  };
  for (const kernel of kernels) {
    const patched = kernel.dspool_executing !== undefined;
    if (patched ? kernel.dspool_executing : kernel.execution_state === 'busy') executing++;
    seen(kernel.dspool_last_work);
  }
  for (const terminal of terminals) {
    if (terminal.dspool_foreground) busyTerminals++;
    seen(terminal.dspool_last_input);
  }
  if (executing + busyTerminals > 0) last = Math.max(last, nowMs);
  return { kernelsExecuting: executing, foreground: busyTerminals, ...(last > 0 ? { lastWork: new Date(last).toISOString() } : {}) };
}

/**
 * Adds up the work seen in several places (the Jupyter server, SSH).
 *
 * @example
 * mergeWork(jupyterWork(k, t, now), sshWork(sessions));
 */
export function mergeWork(...parts: readonly (ServerWork | undefined)[]): ServerWork {
  let kernelsExecuting = 0;
  let foreground = 0;
  let last = 0;
  for (const part of parts) {
    if (!part) continue;
    kernelsExecuting += part.kernelsExecuting;
    foreground += part.foreground;
    const at = part.lastWork ? Date.parse(part.lastWork) : Number.NaN;
    if (Number.isFinite(at)) last = Math.max(last, at);
  }
  return { kernelsExecuting, foreground, ...(last > 0 ? { lastWork: new Date(last).toISOString() } : {}) };
}
