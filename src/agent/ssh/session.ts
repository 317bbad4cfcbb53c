// One SSH session channel on the instance: collects pty/env requests, then runs exactly one thing as the user
// (login shell, `<shell> -c <command>` or the sftp-server), relays its streams, exit status and signals, and
// hangs up everything it started when it ends.
import type { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';
import pty from 'node-pty';
import type { PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import type { Logger } from '../../lib/log.js';
import { endChannel } from '../../ssh/channel.js';
import { envAccepted, sessionEnv, type SshUser } from './env.js';
import { hangUpSession } from './processes.js';
import { spawnAsUser, spawnPlan } from '../spawn.js';
import type { SpawnSpec } from '../spawn-spec.js';

/** Signals a client may send (RFC 4254 §6.10 names, without `SIG`). */
const SIGNALS = new Set(['ABRT', 'ALRM', 'FPE', 'HUP', 'ILL', 'INT', 'KILL', 'PIPE', 'QUIT', 'SEGV', 'TERM', 'USR1', 'USR2']);

/** What a session is running, as listed by `InstanceSshServer.sessions()`. */
export interface SshSessionInfo {
  user: string;
  kind: 'shell' | 'exec' | 'sftp';
  /** Pid of the session leader (its session id: every process it starts shares it). */
  pid: number;
  startedAt: Date;
  /** Last time the client sent input (keystrokes, uploaded bytes). */
  lastInputAt: Date;
  /** It runs on a pseudo-terminal (its foreground process group tells whether a job runs). */
  pty: boolean;
  /** The command of an `exec` session (`ssh host cmd`). */
  command?: string;
  /** Shows a line on the session's terminal (interactive pty sessions only; never on exec/sftp streams). */
  notify?: (message: string) => void;
}

/** The narrow context a session needs from its server. */
export interface SessionContext {
  user: string;
  account: SshUser;
  acceptEnv: readonly string[];
  defaultPath: string;
  sftpServerPath: string;
  runAsUser: boolean;
  killGraceMs: number;
  log: Logger;
  /** Called once a process runs, and again (with `undefined`) when it has ended. */
  track(info: SshSessionInfo, ended: boolean): void;
}

interface Running {
  readonly info: SshSessionInfo;
  resize(cols: number, rows: number): void;
  signal(name: string): void;
}

function signalName(signal: number | NodeJS.Signals | null | undefined): string | undefined {
  if (signal === null || signal === undefined || signal === 0) return undefined;
  if (typeof signal === 'string') return signal.replace(/^SIG/, '');
  const found = Object.entries(constants.signals).find(([, n]) => n === signal);
  return found?.[0].replace(/^SIG/, '');
}

function finish(channel: ServerChannel, code: number | null, signal: string | undefined): void {
  void endChannel(channel, signal !== undefined ? { signal } : { code: code ?? 255 });
}

/**
 * Wires one accepted session: everything before `shell`/`exec`/`subsystem` is collected, then one process runs.
 *
 * @example
 * conn.on('session', (accept) => handleSession(accept(), context));
 */
export function handleSession(session: Session, ctx: SessionContext): void {
  let ptyInfo: PseudoTtyInfo | undefined;
  const clientEnv: Record<string, string> = {};
  let running: Running | undefined;
  let closed = false;
  let execCommand: string | undefined;

  session.on('env', (accept, reject, info) => {
    if (envAccepted(info.key, ctx.acceptEnv)) {
      clientEnv[info.key] = info.val;
      accept?.();
    } else {
      ctx.log.debug({ user: ctx.user, name: info.key }, 'env refused');
      reject?.();
    }
  });
  session.on('pty', (accept, _reject, info) => {
    ptyInfo = info;
    accept?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    if (ptyInfo !== undefined) ptyInfo = { ...ptyInfo, cols: info.cols, rows: info.rows };
    running?.resize(info.cols, info.rows);
    accept?.();
  });
  session.on('signal', (accept, reject, info) => {
    const name = String(info.name).replace(/^SIG/, '');
    if (running !== undefined && SIGNALS.has(name)) {
      running.signal(name);
      accept?.();
    } else reject?.();
  });
  session.on('x11', (_accept, reject) => reject?.());
  session.on('auth-agent', (_accept, reject) => reject?.());
  session.on('shell', (accept, reject) => {
    if (running !== undefined) return reject?.();
    running = start(accept(), 'shell', undefined);
  });
  session.on('exec', (accept, reject, info) => {
    if (running !== undefined) return reject?.();
    running = start(accept(), 'exec', info.command);
  });
  session.on('subsystem', (accept, reject, info) => {
    if (running !== undefined || info.name !== 'sftp') {
      ctx.log.info({ user: ctx.user, subsystem: info.name }, 'subsystem refused');
      return reject?.();
    }
    running = start(accept(), 'sftp', undefined);
  });
  session.on('close', () => {
    closed = true;
  });

  function start(channel: ServerChannel, kind: SshSessionInfo['kind'], command: string | undefined): Running | undefined {
    execCommand = command;
    const env = sessionEnv(ctx.user, ctx.account, ctx.defaultPath, clientEnv);
    if (ptyInfo !== undefined) env.TERM = ptyInfo.term || 'xterm';
    const { account } = ctx;
    const shell = account.shell;
    const [file, args] =
      kind === 'sftp' ? [ctx.sftpServerPath, []] : command === undefined ? [shell, ['-l']] : [shell, ['-c', command]];
    // The same start as every process of the user's session: their IDs and groups, umask 077, the session's cgroup.
    const spec: SpawnSpec = {
      file,
      args,
      env,
      cwd: account.home,
      ...(ctx.runAsUser ? { uid: account.uid, gid: account.gid, groups: account.groups ?? [account.gid] } : {}),
      umask: 0o077,
      cgroupProcs: account.cgroupProcs ?? [],
    };
    if (ptyInfo !== undefined && kind !== 'sftp') return startPty(channel, kind, spec, ptyInfo);
    return startPiped(channel, kind, spec);
  }

  function track(kind: SshSessionInfo['kind'], pid: number): SshSessionInfo {
    const now = new Date();
    const info: SshSessionInfo = {
      user: ctx.user, kind, pid, startedAt: now, lastInputAt: now, pty: ptyInfo !== undefined && kind !== 'sftp',
      ...(execCommand === undefined ? {} : { command: execCommand }),
    };
    ctx.track(info, false);
    ctx.log.info({ user: ctx.user, kind, pid }, 'ssh session started');
    return info;
  }

  function ended(info: SshSessionInfo, code: number | null, signal: string | undefined): void {
    ctx.log.info({ user: ctx.user, kind: info.kind, pid: info.pid, code, signal }, 'ssh session ended');
    void hangUpSession(info.pid, ctx.killGraceMs).finally(() => ctx.track(info, true));
  }

  function startPiped(channel: ServerChannel, kind: SshSessionInfo['kind'], spec: SpawnSpec): Running | undefined {
    let child: ChildProcess;
    try {
      child = spawnAsUser(spec, { detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    } catch (error) {
      return failed(channel, error);
    }
    if (child.pid === undefined) {
      child.once('error', (error) => failed(channel, error));
      return undefined;
    }
    const info = track(kind, child.pid);
    const { stdin, stdout, stderr } = child;
    stdin?.on('error', () => undefined);
    channel.on('data', () => {
      info.lastInputAt = new Date();
    });
    if (stdin) channel.pipe(stdin);
    if (stdout) stdout.pipe(channel, { end: false });
    if (stderr) stderr.pipe(channel.stderr, { end: false });
    child.on('close', (code, signal) => {
      const name = signalName(signal);
      ended(info, code, name);
      if (!closed) finish(channel, code, name);
    });
    channel.on('close', () => {
      closed = true;
      if (child.exitCode === null && child.signalCode === null) void hangUpSession(info.pid, ctx.killGraceMs);
    });
    return {
      info,
      resize: () => undefined,
      signal: (name) => {
        try {
          process.kill(info.pid, `SIG${name}` as NodeJS.Signals);
        } catch {
          // gone
        }
      },
    };
  }

  function startPty(channel: ServerChannel, kind: SshSessionInfo['kind'], spec: SpawnSpec, tty: PseudoTtyInfo): Running | undefined {
    let term: pty.IPty;
    try {
      // node-pty runs the plan as is (as root: the wrapper joins the cgroup and drops to the user before the shell).
      const plan = spawnPlan(spec);
      term = pty.spawn(plan.file, plan.args, {
        name: spec.env.TERM ?? 'xterm',
        cols: tty.cols || 80,
        rows: tty.rows || 24,
        cwd: plan.cwd,
        env: plan.env,
        encoding: null,
      } as pty.IPtyForkOptions);
    } catch (error) {
      return failed(channel, error);
    }
    const info = track(kind, term.pid);
    // Like wall(1): a notice goes to the terminal, never into the byte stream of scp, sftp or an exec.
    info.notify = (message) => {
      channel.write(`\r\n\x1b[1m[dspool] ${message.replace(/[\x00-\x1f\x7f]/g, ' ')}\x1b[0m\r\n`);
    };
    term.onData((data: string | Buffer) => {
      if (!channel.write(data)) {
        term.pause();
        channel.once('drain', () => term.resume());
      }
    });
    channel.on('data', (data: Buffer) => {
      info.lastInputAt = new Date();
      term.write(data);
    });
    term.onExit(({ exitCode, signal }) => {
      const name = signalName(signal);
      ended(info, exitCode, name);
      if (!closed) finish(channel, exitCode, name);
    });
    channel.on('close', () => {
      closed = true;
      void hangUpSession(info.pid, ctx.killGraceMs);
    });
    return {
      info,
      resize: (cols, rows) => {
        try {
          term.resize(Math.max(cols, 1), Math.max(rows, 1));
        } catch {
          // exited
        }
      },
      signal: (name) => {
        try {
          process.kill(info.pid, `SIG${name}` as NodeJS.Signals);
        } catch {
          // gone
        }
      },
    };
  }

  function failed(channel: ServerChannel, error: unknown): undefined {
    ctx.log.warn({ user: ctx.user, err: error }, 'ssh session could not start');
    channel.stderr.write(`dspool: could not start the session: ${(error as Error).message}\r\n`);
    finish(channel, 127, undefined);
    return undefined;
  }
}
