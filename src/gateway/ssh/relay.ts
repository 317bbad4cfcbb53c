// Relays one client's channels to the same user's instance-side SSH server over the gateway's own connection:
// each session channel becomes one session channel upstream (pty, env, shell/exec/subsystem, window changes,
// signals, exit status), each direct-tcpip becomes a forward opened by the instance — so only that instance is
// reachable.
import type { Client, ClientChannel, PseudoTtyInfo, ServerChannel, Session, TcpipRequestInfo, AcceptConnection, RejectConnection } from 'ssh2';
import type { Logger } from '../../lib/log.js';
import { endChannel, type ExitReason } from '../../ssh/channel.js';

/** The narrow context a relay needs. */
export interface RelayContext {
  user: string;
  upstream: Client;
  /** Subsystems relayed; any other is refused at the front door. */
  subsystems: readonly string[];
  log: Logger;
}

type Opener = (cb: (err: Error | undefined, channel: ClientChannel) => void) => void;

/**
 * Relays one accepted client session channel. Requests before the start request (pty-req, env) are collected
 * and sent upstream with it. The start request is accepted at once; if the instance then refuses it, the client
 * reads why on stderr and gets exit status 1. Subsystems not in `ctx.subsystems` are refused outright.
 *
 * @example
 * conn.on('session', (accept) => relaySession(accept(), { user, upstream, log }));
 */
export function relaySession(session: Session, ctx: RelayContext): void {
  let pty: PseudoTtyInfo | undefined;
  const env: Record<string, string> = {};
  let upstream: ClientChannel | undefined;
  let started = false;
  let frontClosed = false;

  session.on('env', (accept, _reject, info) => {
    env[info.key] = info.val;
    accept?.();
  });
  session.on('pty', (accept, _reject, info) => {
    pty = info;
    accept?.();
  });
  session.on('window-change', (accept, _reject, info) => {
    if (pty !== undefined) pty = { ...pty, rows: info.rows, cols: info.cols, width: info.width, height: info.height };
    upstream?.setWindow(info.rows, info.cols, info.height, info.width);
    accept?.();
  });
  session.on('signal', (accept, reject, info) => {
    if (upstream === undefined) return reject?.();
    upstream.signal(String(info.name));
    accept?.();
  });
  session.on('x11', (_accept, reject) => reject?.());
  session.on('auth-agent', (_accept, reject) => reject?.());
  session.on('close', () => {
    frontClosed = true;
    upstream?.close();
  });

  const ptyOptions = (): object | undefined =>
    pty === undefined
      ? undefined
      : { rows: pty.rows, cols: pty.cols, width: pty.width, height: pty.height, term: pty.term, modes: pty.modes };

  session.on('shell', (accept, reject) => {
    start(accept, reject, 'shell', (cb) => {
      const tty = ptyOptions();
      ctx.upstream.shell(tty === undefined ? false : tty, { env }, cb);
    });
  });
  session.on('exec', (accept, reject, info) => {
    start(accept, reject, 'exec', (cb) => {
      const tty = ptyOptions();
      ctx.upstream.exec(info.command, tty === undefined ? { env } : { env, pty: tty }, cb);
    });
  });
  session.on('subsystem', (accept, reject, info) => {
    if (!ctx.subsystems.includes(info.name)) {
      ctx.log.info({ user: ctx.user, subsystem: info.name.slice(0, 64) }, 'ssh subsystem refused');
      return reject?.();
    }
    start(accept, reject, `subsystem:${info.name}`, (cb) => ctx.upstream.subsys(info.name, cb));
  });

  function start(accept: AcceptConnection<ServerChannel>, reject: RejectConnection | undefined, what: string, open: Opener): void {
    if (started) return reject?.();
    started = true;
    // Accepted at once: ssh2 drops data a client sends before the accept (sftp and shells send right away), so
    // the channel must exist while the instance hop opens; data waits in it under SSH flow control.
    const front = accept();
    if (front === undefined) return;
    const refused = (detail: string): void => {
      ctx.log.info({ user: ctx.user, what, err: detail }, 'ssh request refused upstream');
      front.stderr.write(`dspool: ${what} was refused by your instance\r\n`);
      void endChannel(front, { code: 1 });
    };
    try {
      open((err, channel) => {
        if (err !== undefined) return refused(err.message);
        if (frontClosed) return channel.close();
        pipeSession(front, channel);
      });
    } catch (error) {
      refused((error as Error).message);
    }
  }

  function pipeSession(front: ServerChannel, up: ClientChannel): void {
    upstream = up;
    let exit: ExitReason | undefined;
    up.on('exit', (code: number | null, signal?: string, dump?: boolean, desc?: string) => {
      exit = code !== null ? { code } : { signal: String(signal ?? 'KILL').replace(/^SIG/, ''), coreDumped: dump === true, message: desc ?? '' };
    });
    front.pipe(up);
    up.pipe(front, { end: false });
    up.stderr.pipe(front.stderr, { end: false });
    let outEnded = false;
    let errEnded = false;
    let upClosed = false;
    const maybeEnd = (): void => {
      if (outEnded && errEnded && upClosed) void endChannel(front, exit);
    };
    up.once('end', () => {
      outEnded = true;
      maybeEnd();
    });
    up.stderr.once('end', () => {
      errEnded = true;
      maybeEnd();
    });
    up.once('close', () => {
      upClosed = true;
      // A channel closed without EOF still ends both streams.
      setImmediate(() => {
        outEnded = true;
        errEnded = true;
        maybeEnd();
      });
    });
    front.on('error', () => up.close());
    up.on('error', () => front.close());
  }
}

/**
 * Relays one direct-tcpip request (`ssh -L`, `-D`, VS Code's forwards): the instance opens the connection, so
 * the destination is resolved and restricted there.
 *
 * @example
 * conn.on('tcpip', (accept, reject, info) => relayTcpip(accept, reject, info, ctx));
 */
export function relayTcpip(
  accept: AcceptConnection<ServerChannel>,
  reject: RejectConnection,
  info: TcpipRequestInfo,
  ctx: RelayContext,
): void {
  try {
    ctx.upstream.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, up) => {
      if (err !== undefined) {
        ctx.log.info({ user: ctx.user, host: info.destIP, port: info.destPort, err: err.message }, 'ssh forward refused upstream');
        return reject();
      }
      const front = accept();
      front.pipe(up).pipe(front);
      front.on('close', () => up.close());
      up.on('close', () => front.close());
      front.on('error', () => up.close());
      up.on('error', () => front.close());
    });
  } catch (error) {
    ctx.log.warn({ user: ctx.user, err: error }, 'ssh forward failed upstream');
    reject();
  }
}
