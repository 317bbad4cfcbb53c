// The SSH front door: authenticates pool users (password or registered key), asks the hub where their session
// is (starting one while the client waits, with progress in the auth banner), then relays every channel to that
// instance over a connection the gateway opens with the pool-internal key.
import ssh2 from 'ssh2';
import type { AuthContext, Connection, PublicKeyAuthContext } from 'ssh2';
import { usernameProblem } from '../../lib/names.js';
import { Lifecycle } from '../../lib/state.js';
import { noDelay } from '../../ssh/nodelay.js';
import { parseSshKey, sameKey, signatureValid } from '../../ssh/keys.js';
import { sendAuthBanner, sendIgnore } from '../../ssh/wire.js';
import { SshListenError, SshServerHeldError, SshSessionUnavailableError } from './errors.js';
import { loadOrCreateHostKey } from './host-key.js';
import { sshFrontDoorDefaults, type ResolvedSshFrontDoorOptions, type SshFrontDoorOptions, type SshTarget } from './options.js';
import { LoginLimiter } from '../../lib/login-limiter.js';
import { openHop, relaySession, relayTcpip, type Hop, type RelayContext } from './relay.js';

const { Server, Client } = ssh2;
type SshClient = InstanceType<typeof Client>;

/**
 * Lifecycle of the front door.
 * - `starting`: loading the host key, binding the port.
 * - `listening`: accepting connections.
 * - `closing`: refusing new connections, ending open ones.
 * - `closed`: everything is released.
 */
export type SshFrontDoorState = 'starting' | 'listening' | 'closing' | 'closed';

const EDGES: Record<SshFrontDoorState, readonly SshFrontDoorState[]> = {
  starting: ['listening', 'closed'],
  listening: ['closing'],
  closing: ['closed'],
  closed: [],
};

/**
 * Lifecycle of one client connection.
 * - `authenticating`: waiting for a valid credential.
 * - `locating`: credential accepted; waiting for the hub to name (or start) the user's instance.
 * - `held`: authenticated, but the pool stopped the user's server (idle, a drain deadline) and only a channel that
 *   asks for a terminal may start it again; waiting for the first channel to say what it wants.
 * - `connecting`: opening the hop to the instance's SSH server.
 * - `relaying`: authenticated; channels are relayed.
 * - `closed`: the client or the instance hop went away.
 */
export type SshConnectionState = 'authenticating' | 'locating' | 'held' | 'connecting' | 'relaying' | 'closed';

const CONNECTION_EDGES: Record<SshConnectionState, readonly SshConnectionState[]> = {
  authenticating: ['locating', 'closed'],
  locating: ['connecting', 'held', 'authenticating', 'closed'],
  held: ['connecting', 'closed'],
  connecting: ['relaying', 'authenticating', 'closed'],
  relaying: ['closed'],
  closed: [],
};

/** A running front door. */
export interface SshFrontDoor {
  readonly port: number;
  /** `ssh-ed25519 AAAA…`: the persisted host key's public half (for `dspool ssh-config` / known_hosts). */
  readonly hostPublicKey: string;
  /** `SHA256:…`, as OpenSSH shows it. */
  readonly hostKeyFingerprint: string;
  readonly state: SshFrontDoorState;
  /** Number of open client connections. */
  connections(): number;
  /** Stops listening and ends every connection (and its instance hop). Idempotent. */
  close(): Promise<void>;
}

const METHODS: ['publickey', 'password'] = ['publickey', 'password'];

/** A username as it may appear in logs and banners: valid names as they are, anything else quoted and cut. */
function shown(user: string): string {
  return usernameProblem(user) === undefined ? user : JSON.stringify(user.slice(0, 40));
}

/**
 * Starts the SSH front door.
 *
 * @throws SshHostKeyError when `hostKeyFile` exists but cannot be used.
 * @throws SshListenError when the port cannot be bound.
 * @example
 * const door = await startSshFrontDoor({
 *   port: config.gateway.sshPort,
 *   hostKeyFile: join(dataDir, 'secrets/ssh_host_ed25519_key'),
 *   internalKey: readFileSync(join(dataDir, 'secrets/ssh_internal_ed25519_key')),
 *   authenticator: { checkPassword: (u, p) => hub.checkPassword(u, p), checkPublicKey: (u, a, k) => hub.checkKey(u, a, k) },
 *   locator: { locate: (user, onProgress, signal) => hub.sshTarget(user, onProgress, signal) },
 * });
 */
export async function startSshFrontDoor(options: SshFrontDoorOptions): Promise<SshFrontDoor> {
  const opts = sshFrontDoorDefaults(options);
  const log = opts.log;
  const life = new Lifecycle<SshFrontDoorState>('ssh front door', 'starting', EDGES, log);
  const hostKey = loadOrCreateHostKey(opts.hostKeyFile);
  if (hostKey.created) log.info({ file: opts.hostKeyFile, fingerprint: hostKey.fingerprint }, 'ssh host key created');
  const limiter = new LoginLimiter(opts.rateLimit);
  const open = new Set<Connection>();

  const server = new Server(
    {
      hostKeys: [hostKey.privateKey],
      keepaliveInterval: opts.keepaliveIntervalMs,
      keepaliveCountMax: opts.keepaliveCountMax,
      ident: 'dspool',
    },
    (conn, info) => {
      if (life.state !== 'listening') {
        conn.end();
        return;
      }
      open.add(conn);
      noDelay(conn);
      conn.on('close', () => open.delete(conn));
      handleConnection(conn, info.ip, opts, limiter);
    },
  );
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: Error) => reject(new SshListenError(opts.host, opts.port, { cause: err })));
    server.listen(opts.port, opts.host, () => resolve());
  }).catch((error: unknown) => {
    life.to('closed');
    throw error;
  });
  life.to('listening');
  server.on('error', (err: Error) => log.error({ err }, 'ssh front door error'));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : opts.port;
  log.info({ host: opts.host, port, fingerprint: hostKey.fingerprint }, 'ssh front door listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    hostPublicKey: hostKey.publicKey,
    hostKeyFingerprint: hostKey.fingerprint,
    get state() {
      return life.state;
    },
    connections: () => open.size,
    close() {
      if (closing !== undefined) return closing;
      life.to('closing');
      closing = (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const conn of open) {
          try {
            conn.end();
          } catch (error) {
            log.warn({ err: error }, 'ssh front door: ending a connection failed');
          }
        }
        const deadline = Date.now() + 5_000;
        while (open.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
        await stopped;
        life.to('closed');
        log.info('ssh front door closed');
      })();
      return closing;
    },
  };
}

function handleConnection(conn: Connection, ip: string, opts: ResolvedSshFrontDoorOptions, limiter: LoginLimiter): void {
  const log = opts.log;
  const life = new Lifecycle<SshConnectionState>('ssh connection', 'authenticating', CONNECTION_EDGES, log);
  let tries = 0;
  let upstream: SshClient | undefined;
  let user: string | undefined;
  const abort = new AbortController();
  const grace = setTimeout(() => {
    log.info({ ip }, 'ssh login grace time over');
    conn.end();
  }, opts.loginGraceMs);

  conn.on('error', (err) => log.debug({ err: err.message, ip }, 'ssh client connection error'));
  conn.on('close', () => {
    clearTimeout(grace);
    abort.abort();
    if (life.state !== 'closed') life.to('closed');
    upstream?.end();
    if (user !== undefined) log.info({ user, ip }, 'ssh connection closed');
  });

  /** `counted`: a failure the front door counts itself; `tried`: one the hub counted (it still uses up a try). */
  const refuse = (ctx: AuthContext, counted: boolean, why: Record<string, unknown>, tried = counted): void => {
    if (counted) limiter.fail(ctx.username, ip);
    if (tried) tries += 1;
    log.warn({ user: shown(ctx.username), ip, method: ctx.method, ...why }, 'ssh login refused');
    ctx.reject(METHODS);
    if (tries >= opts.maxAuthTries) {
      sendAuthBanner(conn, 'dspool: too many authentication failures\r\n');
      conn.end();
    }
  };

  conn.on('authentication', (ctx) => {
    void authenticate(ctx).catch((err: unknown) => {
      log.error({ err, user: shown(ctx.username), ip }, 'ssh authentication failed unexpectedly');
      if (life.state === 'authenticating') ctx.reject(METHODS);
    });
  });

  async function authenticate(ctx: AuthContext): Promise<void> {
    if (life.state !== 'authenticating') return ctx.reject(METHODS);
    if (ctx.method !== 'publickey' && ctx.method !== 'password') return ctx.reject(METHODS);
    const name = ctx.username;
    const problem = usernameProblem(name);
    if (problem !== undefined) {
      sendAuthBanner(conn, `dspool: the username ${shown(name)} ${problem}\r\n`);
      return refuse(ctx, true, { reason: 'bad_username' });
    }
    const limited = limiter.check(name, ip);
    if (limited !== undefined) {
      sendAuthBanner(conn, `dspool: too many failed logins; try again in ${Math.ceil(limited.retryAfterMs / 1000)} s\r\n`);
      return refuse(ctx, false, { reason: 'rate_limited', by: limited.by });
    }
    if (ctx.method === 'password') {
      // The hub counts password failures (per user and address, per address: the same limiter as the web login).
      const verdict = await opts.authenticator.checkPassword(name, ctx.password, ip);
      if (verdict === 'busy') {
        sendAuthBanner(conn, 'dspool: too many logins are being checked right now; try again in a moment\r\n');
        return refuse(ctx, false, { reason: 'busy' });
      }
      if (typeof verdict === 'object') {
        sendAuthBanner(conn, `dspool: too many failed logins; try again in ${Math.ceil(verdict.retryAfterMs / 1000)} s\r\n`);
        return refuse(ctx, false, { reason: 'rate_limited' });
      }
      if (verdict !== 'allowed') return refuse(ctx, false, { reason: verdict === 'unknown' ? 'unknown_user' : 'bad_password' }, true);
      return proceed(ctx, name);
    }
    return publicKey(ctx, name);
  }

  async function publicKey(ctx: PublicKeyAuthContext, name: string): Promise<void> {
    const key = parseSshKey(ctx.key.data);
    if (key instanceof Error || !sameKey(key, ctx.key.data)) return refuse(ctx, true, { reason: 'bad_key' });
    const verdict = await opts.authenticator.checkPublicKey(name, key.type, ctx.key.data);
    const query = ctx.signature === undefined;
    // A client offers each of its keys in turn: an unregistered key offered without a signature is not a failure.
    if (verdict !== 'allowed') return refuse(ctx, !query, { reason: verdict === 'unknown' ? 'unknown_user' : 'key_not_registered' });
    if (query) return ctx.accept();
    if (!signatureValid(ctx)) return refuse(ctx, true, { reason: 'bad_signature' });
    return proceed(ctx, name);
  }

  async function proceed(ctx: AuthContext, name: string): Promise<void> {
    life.to('locating');
    clearTimeout(grace);
    log.info({ user: name, ip, method: ctx.method }, 'ssh login accepted; locating session');
    const keepalive = setInterval(() => sendIgnore(conn), opts.waitKeepaliveMs);
    let target: SshTarget;
    try {
      const located = await withTimeout(
        opts.locator.locate(name, (message) => void sendAuthBanner(conn, `dspool: ${message}\r\n`), abort.signal),
        opts.locateTimeoutMs,
      );
      if (abort.signal.aborted) return;
      if ('held' in located) {
        clearInterval(keepalive);
        return hold(ctx, name, located.held);
      }
      target = located;
      life.to('connecting');
      upstream = await connectUpstream(name, target, opts);
    } catch (error) {
      if (abort.signal.aborted) return;
      const forUser = error instanceof SshSessionUnavailableError ? error.message : 'your session could not be reached; please try again';
      log.warn({ user: name, ip, err: error }, 'ssh session unavailable');
      sendAuthBanner(conn, `dspool: ${forUser}\r\n`);
      ctx.reject(METHODS);
      conn.end();
      return;
    } finally {
      clearInterval(keepalive);
    }
    if (abort.signal.aborted) {
      upstream.end();
      return;
    }
    const hop = upstream;
    user = name;
    hop.on('close', () => conn.end());
    hop.on('error', (err) => log.info({ user: name, err: err.message }, 'ssh instance hop error'));
    conn.once('ready', () => {
      life.to('relaying');
      const relay: RelayContext = { user: name, hop: openHop(hop), subsystems: opts.subsystems, log };
      conn.on('session', (accept) => relaySession(accept(), relay));
      conn.on('tcpip', (accept, reject, info) => relayTcpip(accept, reject, info, relay));
    });
    ctx.accept();
  }

  /**
   * The pool stopped the user's server: log them in with no instance yet. The first channel that asks for a
   * terminal starts the server (progress on its stderr) and every channel then shares that hop; a channel that
   * does not (an editor reconnecting on its own: `ssh -T host bash`, sftp, a forward) is told `message` on its
   * stderr and the connection ends. A connection that opens no channel at all ends after the login grace time.
   */
  function hold(ctx: AuthContext, name: string, message: string): void {
    life.to('held');
    user = name;
    log.info({ user: name, ip }, 'ssh login accepted; server stopped by the pool: waiting for an interactive channel to start it');
    const idle = setTimeout(() => {
      if (life.state === 'held') conn.end();
    }, opts.loginGraceMs);
    conn.once('close', () => clearTimeout(idle));
    let connecting: Promise<SshClient> | undefined;
    const hop: Hop = {
      get({ interactive, say }) {
        if (connecting) return connecting;
        if (!interactive) return Promise.reject(new SshServerHeldError(message, name));
        clearTimeout(idle);
        life.to('connecting');
        connecting = (async () => {
          const located = await withTimeout(
            opts.locator.locate(name, (line) => say?.(line), abort.signal, { interactive: true }),
            opts.locateTimeoutMs,
          );
          if ('held' in located) throw new SshServerHeldError(located.held, name);
          const client = await connectUpstream(name, located, opts);
          if (abort.signal.aborted) {
            client.end();
            throw new SshSessionUnavailableError('the connection closed while the server started', name);
          }
          upstream = client;
          client.on('close', () => conn.end());
          client.on('error', (err) => log.info({ user: name, err: err.message }, 'ssh instance hop error'));
          life.to('relaying');
          return client;
        })();
        connecting.catch((error: unknown) => {
          log.warn({ user: name, ip, err: error }, 'ssh session unavailable');
          // The channel tells the user why; then the connection ends (nothing else can use it).
          setTimeout(() => conn.end(), 1_000);
        });
        return connecting;
      },
    };
    conn.once('ready', () => {
      const relay: RelayContext = {
        user: name, hop, subsystems: opts.subsystems, log,
        // The channel that may not start the server has read why (stderr, exit status 1); the client closes the
        // connection once that channel is closed, and one that does not is let go after a moment.
        onHeld: () => {
          setTimeout(() => {
            if (life.state === 'held') conn.end();
          }, 2_000).unref();
        },
      };
      conn.on('session', (accept) => relaySession(accept(), relay));
      conn.on('tcpip', (accept, reject, info) => relayTcpip(accept, reject, info, relay));
    });
    ctx.accept();
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no session after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function connectUpstream(user: string, target: SshTarget, opts: ResolvedSshFrontDoorOptions): Promise<SshClient> {
  const pinned = target.hostKey === undefined ? undefined : parseSshKey(target.hostKey);
  if (pinned instanceof Error) return Promise.reject(pinned);
  return new Promise((resolve, reject) => {
    const client = new Client();
    const fail = (err: Error): void => {
      client.end();
      reject(err);
    };
    client.once('ready', () => {
      client.removeListener('error', fail);
      resolve(client);
    });
    client.once('error', fail);
    client.connect({
      host: target.host,
      port: target.port,
      username: user,
      privateKey: opts.internalKey,
      readyTimeout: opts.instanceReadyTimeoutMs,
      keepaliveInterval: opts.keepaliveIntervalMs,
      keepaliveCountMax: opts.keepaliveCountMax,
      ...(pinned === undefined ? {} : { hostVerifier: (key: Buffer) => sameKey(pinned, key) }),
    });
    noDelay(client);
  });
}
