// Relays one client's channels to the same user's instance-side SSH server over the gateway's own connection:
// each session channel becomes one session channel upstream (pty, env, shell/exec/subsystem, window changes,
// signals, exit status), each direct-tcpip becomes a forward opened by the instance — so only that instance is
// reachable. The instance connection comes from a `Hop`: there already, or opened once a channel says what it
// wants (a held connection: only a channel with a terminal may start a server the pool stopped).
import type { Client, ClientChannel, PseudoTtyInfo, ServerChannel, Session, TcpipRequestInfo, AcceptConnection, RejectConnection } from 'ssh2';
import type { Logger } from '../../lib/log.js';
import { endChannel, type ExitReason } from '../../ssh/channel.js';
import { SshServerHeldError, SshSessionUnavailableError } from './errors.js';

/** What a channel asks of the hop. */
export interface HopRequest {
  /** The channel asked for a terminal (pty-req before its shell or exec). */
  readonly interactive: boolean;
  /** Writes a line for the user on the channel's stderr (progress while a server starts); absent for forwards. */
  readonly say?: (line: string) => void;
}

/**
 * How channels reach the user's instance. Rejects with `SshServerHeldError` (a channel that may not start the
 * server) or `SshSessionUnavailableError` (it could not start); both messages are for the user.
 */
export interface Hop {
  get(request: HopRequest): Promise<Client>;
}

/**
 * A hop over an instance connection that is already open.
 *
 * @example
 * relaySession(session, { user, hop: openHop(client), subsystems: ['sftp'], log });
 */
export function openHop(client: Client): Hop {
  const ready = Promise.resolve(client);
  return { get: () => ready };
}

/** The narrow context a relay needs. */
export interface RelayContext {
  user: string;
  hop: Hop;
  /** Subsystems relayed; any other is refused at the front door. */
  subsystems: readonly string[];
  log: Logger;
  /** Called after a channel was refused by a held hop (the front door then ends the connection). */
  onHeld?: () => void;
}

type Opener = (client: Client, cb: (err: Error | undefined, channel: ClientChannel) => void) => void;

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
    start(accept, reject, 'shell', (client, cb) => {
      const tty = ptyOptions();
      client.shell(tty === undefined ? false : tty, { env }, cb);
    });
  });
  session.on('exec', (accept, reject, info) => {
    start(accept, reject, 'exec', (client, cb) => {
      const tty = ptyOptions();
      client.exec(info.command, tty === undefined ? { env } : { env, pty: tty }, cb);
    });
  });
  session.on('subsystem', (accept, reject, info) => {
    if (!ctx.subsystems.includes(info.name)) {
      ctx.log.info({ user: ctx.user, subsystem: info.name.slice(0, 64) }, 'ssh subsystem refused');
      return reject?.();
    }
    start(accept, reject, `subsystem:${info.name}`, (client, cb) => client.subsys(info.name, cb));
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
    const say = (line: string): void => {
      if (!frontClosed) front.stderr.write(`dspool: ${line}\r\n`);
    };
    ctx.hop.get({ interactive: pty !== undefined, say }).then(
      (client) => {
        if (frontClosed) return;
        try {
          open(client, (err, channel) => {
            if (err !== undefined) return refused(err.message);
            if (frontClosed) return channel.close();
            pipeSession(front, channel);
          });
        } catch (error) {
          refused((error as Error).message);
        }
      },
      (error: unknown) => {
        const held = error instanceof SshServerHeldError;
        ctx.log.info({ user: ctx.user, what, err: (error as Error).message, held }, held ? 'ssh channel held: it may not start the server' : 'ssh channel has no instance');
        say(error instanceof SshServerHeldError || error instanceof SshSessionUnavailableError ? error.message : 'your session could not be reached; please try again');
        void endChannel(front, { code: 1 }).finally(() => {
          if (held) ctx.onHeld?.();
        });
      },
    );
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
  const forward = (client: Client): void => {
    try {
      client.forwardOut(info.srcIP, info.srcPort, info.destIP, info.destPort, (err, up) => {
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
  };
  // A forward never starts a server: on a held connection it is refused until a terminal has started one.
  ctx.hop.get({ interactive: false }).then(forward, (error: unknown) => {
    ctx.log.info({ user: ctx.user, port: info.destPort, err: (error as Error).message }, 'ssh forward refused: no instance for it');
    reject();
  });
}
