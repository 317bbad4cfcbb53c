// The instance-side SSH server: the hop behind the gateway's front door. It accepts only the pool-internal key,
// runs each session as the pool user's own account, and lets port forwards reach this instance only.
import { connect } from 'node:net';
import ssh2 from 'ssh2';
import type { AuthContext, Connection, ParsedKey } from 'ssh2';
import { usernameProblem } from '../../lib/names.js';
import { Lifecycle } from '../../lib/state.js';
import { noDelay } from '../../ssh/nodelay.js';
import { fingerprint, parseSshKey, publicKeyLine, sameKey, signatureValid } from '../../ssh/keys.js';
import type { SshUser } from './env.js';
import { InstanceSshKeyError, InstanceSshListenError } from './errors.js';
import { instanceSshDefaults, type InstanceSshOptions, type ResolvedInstanceSshOptions } from './options.js';
import { hangUpSession } from './processes.js';
import { handleSession, type SshSessionInfo } from './session.js';

const { Server } = ssh2;

/**
 * Lifecycle of the instance SSH server.
 * - `starting`: binding the port.
 * - `listening`: accepting connections.
 * - `closing`: refusing new connections, ending open ones and their processes.
 * - `closed`: everything is released.
 */
export type InstanceSshState = 'starting' | 'listening' | 'closing' | 'closed';

const EDGES: Record<InstanceSshState, readonly InstanceSshState[]> = {
  starting: ['listening', 'closed'],
  listening: ['closing'],
  closing: ['closed'],
  closed: [],
};

/** A running instance SSH server. */
export interface InstanceSshServer {
  /** The bound port (the agent reports it as `hello.sshPort`). */
  readonly port: number;
  /** The host key's public half, `ssh-ed25519 AAAA…`, for the gateway to pin. */
  readonly hostPublicKey: string;
  /** `SHA256:…` fingerprint of the host key. */
  readonly hostKeyFingerprint: string;
  readonly state: InstanceSshState;
  /** Sessions running now (for idle detection: `lastInputAt` is the user's last input). */
  sessions(): SshSessionInfo[];
  /** Writes a notice on every interactive terminal of `user`; returns how many terminals got it. */
  notify(user: string, message: string): number;
  /**
   * Ends every connection of `user` (their session on this instance is over), after writing `message` on their
   * terminals; their processes are hung up as on any disconnect. Returns how many connections it ended.
   */
  endUser(user: string, message: string): number;
  /** Stops listening, ends every connection and the processes they started. Idempotent. */
  close(): Promise<void>;
}

/**
 * Starts the instance-side SSH server.
 *
 * @throws InstanceSshKeyError when `internalPublicKey` or `hostKey` cannot be parsed.
 * @throws InstanceSshListenError when the port cannot be bound.
 * @example
 * const server = await startInstanceSshServer({
 *   host: settings.address,
 *   internalPublicKey: settings.ssh.internalPublicKey,
 *   resolveUser: (name) => accounts.get(name),
 * });
 * hello.sshPort = server.port;
 */
export async function startInstanceSshServer(options: InstanceSshOptions): Promise<InstanceSshServer> {
  const opts = instanceSshDefaults(options);
  const internal = parseSshKey(opts.internalPublicKey);
  if (internal instanceof Error) throw new InstanceSshKeyError('internalPublicKey', { cause: internal });
  const hostKey = parseSshKey(opts.hostKey);
  if (hostKey instanceof Error || !hostKey.isPrivateKey()) throw new InstanceSshKeyError('hostKey', { cause: hostKey });

  const log = opts.log;
  const life = new Lifecycle<InstanceSshState>('instance ssh server', 'starting', EDGES, log);
  const connections = new Set<Connection>();
  /** Who each authenticated connection belongs to. */
  const owners = new Map<Connection, string>();
  const running = new Set<SshSessionInfo>();
  const server = new Server(
    { hostKeys: [opts.hostKey], keepaliveInterval: opts.keepaliveIntervalMs, keepaliveCountMax: opts.keepaliveCountMax, ident: 'dspool-instance' },
    (conn, info) => {
      if (life.state !== 'listening') {
        conn.end();
        return;
      }
      connections.add(conn);
      noDelay(conn);
      conn.on('close', () => {
        connections.delete(conn);
        owners.delete(conn);
      });
      conn.on('error', (err) => log.debug({ err, ip: info.ip }, 'instance ssh connection error'));
      serve(conn, info.ip, opts, internal, running, (name) => owners.set(conn, name));
    },
  );

  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: Error) => reject(new InstanceSshListenError(opts.host, opts.port, { cause: err })));
    server.listen(opts.port, opts.host, () => resolve());
  }).catch((error: unknown) => {
    life.to('closed');
    throw error;
  });
  life.to('listening');
  server.on('error', (err: Error) => log.error({ err }, 'instance ssh server error'));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.port;
  log.info({ host: opts.host, port }, 'instance ssh server listening');

  const notify = (user: string, message: string): number => {
    let delivered = 0;
    for (const session of running) {
      if (session.user !== user || !session.notify) continue;
      session.notify(message);
      delivered++;
    }
    return delivered;
  };

  let closing: Promise<void> | undefined;
  return {
    port,
    hostPublicKey: publicKeyLine(hostKey),
    hostKeyFingerprint: fingerprint(hostKey),
    get state() {
      return life.state;
    },
    sessions: () => [...running].map((s) => ({ ...s })),
    notify,
    endUser(user, message) {
      notify(user, message);
      const sessions = [...running].filter((session) => session.user === user);
      const ended = [...owners.values()].filter((owner) => owner === user).length;
      if (ended === 0) return 0;
      log.info({ user, connections: ended, sessions: sessions.length }, 'instance ssh: ending the connections of a session that is over');
      // Hang up their processes first: each channel then closes as on any exit, after the notice. A connection
      // left open afterwards (a port forward, an idle multiplexed one) is ended once they are gone.
      void Promise.allSettled(sessions.map((session) => hangUpSession(session.pid, opts.killGraceMs)))
        .then(() => new Promise((resolve) => setTimeout(resolve, 500)))
        .then(() => {
          for (const [conn, owner] of owners) if (owner === user) conn.end();
        });
      return ended;
    },
    close() {
      if (closing !== undefined) return closing;
      life.to('closing');
      closing = (async () => {
        const failures: unknown[] = [];
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const conn of connections) {
          try {
            conn.end();
          } catch (error) {
            failures.push(error);
          }
        }
        // Processes are hung up when their channels close; wait for them (bounded by the kill grace).
        const deadline = Date.now() + opts.killGraceMs + 2_000;
        while (running.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
        await stopped;
        life.to('closed');
        for (const f of failures) log.warn({ err: f }, 'instance ssh close step failed');
        log.info('instance ssh server closed');
      })();
      return closing;
    },
  };
}

function serve(
  conn: Connection,
  ip: string,
  opts: ResolvedInstanceSshOptions,
  internal: ParsedKey,
  running: Set<SshSessionInfo>,
  owned: (user: string) => void,
): void {
  const log = opts.log;
  let user: { name: string; account: SshUser } | undefined;

  conn.on('authentication', (ctx: AuthContext) => {
    if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
    if (usernameProblem(ctx.username) !== undefined || !sameKey(internal, ctx.key.data)) {
      log.warn({ user: ctx.username.slice(0, 64), ip }, 'instance ssh: key or user refused');
      return ctx.reject(['publickey']);
    }
    if (ctx.signature === undefined) return ctx.accept();
    if (!signatureValid(ctx)) return ctx.reject(['publickey']);
    const name = ctx.username;
    Promise.resolve(opts.resolveUser(name)).then(
      (account) => {
        if (account === undefined) {
          log.warn({ user: name, ip }, 'instance ssh: no such account');
          return ctx.reject(['publickey']);
        }
        user = { name, account };
        ctx.accept();
      },
      (err: unknown) => {
        log.error({ err, user: name }, 'instance ssh: resolveUser failed');
        ctx.reject(['publickey']);
      },
    );
  });

  conn.on('ready', () => {
    const who = user;
    if (who === undefined) return conn.end();
    owned(who.name);
    conn.on('session', (accept) => {
      handleSession(accept(), {
        user: who.name,
        account: who.account,
        acceptEnv: opts.acceptEnv,
        defaultPath: opts.defaultPath,
        sftpServerPath: opts.sftpServerPath,
        runAsUser: opts.runAsUser,
        killGraceMs: opts.killGraceMs,
        log,
        track: (info, ended) => (ended ? running.delete(info) : running.add(info)),
      });
    });
    conn.on('tcpip', (accept, reject, info) => {
      const host = info.destIP;
      if (!opts.forwardHosts.includes(host)) {
        log.warn({ user: who.name, host, port: info.destPort }, 'instance ssh: forward to another host refused');
        return reject();
      }
      const socket = connect({ host: host === 'localhost' ? '127.0.0.1' : host, port: info.destPort });
      socket.once('error', () => reject());
      socket.once('connect', () => {
        const channel = accept();
        socket.removeAllListeners('error');
        socket.on('error', () => channel.destroy());
        channel.on('error', () => socket.destroy());
        socket.pipe(channel).pipe(socket);
        channel.on('close', () => socket.destroy());
      });
    });
  });
}
