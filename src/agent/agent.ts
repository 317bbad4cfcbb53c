// The agent: one per instance. Joins the hub, reports the machine, and runs users' Jupyter servers on request.
import type { Logger } from '../lib/log.js';
import { usernameProblem } from '../lib/names.js';
import {
  AgentErrorCode,
  startServerParamsSchema,
  stopServerParamsSchema,
  notifyParamsSchema,
  type AgentMessage,
  type AgentUser,
  type AgentMethod,
  type AgentMethods,
  type HubMessage,
  type ServerReport,
} from '../protocol/agent.js';
import { HubConnection } from './connection.js';
import { AccountError, AgentError, AgentStateError, BadRequestError, SessionExistsError, ShareUnavailableError } from './errors.js';
import { capacity, detectGpus, isRoot, load, runChecks, type HostChecks } from './host.js';
import { ShareKeeper } from './share.js';
import { agentDefaults, type AgentOptions, type ResolvedAgentOptions } from './options.js';
import { UserServer } from './server.js';
import { userPaths } from './layout.js';
import { startInstanceSshServer, type InstanceSshServer, type SshUser } from './ssh/index.js';
import type { TransitionTable } from '../lib/state.js';
import { endLeftovers } from './leftovers.js';
import { detectCgroups, instanceCgroupName, killInstanceCgroup, prepareInstanceCgroup, type CgroupHost } from './cgroup.js';
import { ForkServer, forkServerSocketDir } from './forkserver/client.js';
import { mergeWork, sshWork } from './activity.js';
import { startRelay, type ServerRelay } from './relay.js';

/**
 * States of the agent.
 * - `idle`: created, `start()` not called.
 * - `running`: connected (or reconnecting) to the hub and serving requests.
 * - `closing`: stopping every server and the connection.
 * - `closed`: everything stopped.
 */
export type AgentState = 'idle' | 'running' | 'closing' | 'closed';

const TRANSITIONS: TransitionTable<AgentState> = {
  idle: ['running', 'closing'],
  running: ['closing'],
  closing: ['closed'],
  closed: [],
};

type Request = Extract<HubMessage, { type: 'request' }>;

/** Lowest UID/GID a pool user may get (pool.yaml `users.uidBase` has the same floor): never a system account. */
const MIN_USER_ID = 1000;

/**
 * One instance's agent. `start()` dials the hub; `close()` stops every server it started and the connection.
 * A hub `shutdown` request closes the agent and resolves `done`.
 *
 * @example
 * const agent = new Agent(readAgentEnv(process.env));
 * agent.start();
 * await agent.done; // after `shutdown` from the hub, or close()
 */
export class Agent {
  private current: AgentState = 'idle';
  private readonly options: ResolvedAgentOptions;
  private readonly log: Logger;
  private readonly asRoot = isRoot();
  /** Where sessions' cgroups go; `undefined` when not root or the host gives none (found at `start()`). */
  private cgroups: CgroupHost | undefined;
  private readonly instanceCgroup: string;
  private readonly servers = new Map<string, UserServer>();
  private readonly connection: HubConnection;
  /** The instance-side SSH server (the hop behind the gateway's SSH front door), when settings turn it on. */
  private ssh: Promise<InstanceSshServer | undefined> = Promise.resolve(undefined);
  /** The instance's fork server (pre-imported Jupyter that forks users' servers); absent when forking is off. */
  private forks: ForkServer | undefined;
  /**
   * The TLS relay the gateway reaches servers through when `settings.relay` (servers then listen on loopback); it
   * starts before the hub connection, so `hello` and every server URL can name it.
   */
  private relay: Promise<ServerRelay | undefined> = Promise.resolve(undefined);
  private relayServer: ServerRelay | undefined;
  /** The same server once started, for the heartbeat (which cannot wait). */
  private sshServer: InstanceSshServer | undefined;
  /** Mounts and probes the share when settings ask for it (`shareMount`); absent: the operator mounts it. */
  private readonly share: ShareKeeper | undefined;
  /** The checks of the last `hello` other than the share's (the keeper's status is added to every heartbeat). */
  private hostChecks: HostChecks | undefined;
  /** Sessions being ended (SSH hung up, leftovers stopped) after their server exited. */
  private readonly ending = new Set<Promise<void>>();
  private closePromise: Promise<void> | undefined;
  private resolveDone!: () => void;
  /** Resolves once the agent is closed, whether by `close()` or by the hub's `shutdown`. */
  readonly done: Promise<void> = new Promise((resolve) => (this.resolveDone = resolve));

  constructor(options: AgentOptions) {
    this.options = agentDefaults(options);
    this.log = this.options.log.child({ instance: this.options.instanceId });
    this.instanceCgroup = instanceCgroupName(this.options.instanceId, this.options.settings.scratchDir);
    const { shareMount, sharePath, scratchDir } = this.options.settings;
    this.share = shareMount
      ? new ShareKeeper({
        sharePath, mount: shareMount.mount, probeIntervalMs: shareMount.probeIntervalMs, probeTimeoutMs: shareMount.probeTimeoutMs,
        instanceId: this.options.instanceId, stateDir: scratchDir, log: this.log,
      })
      : undefined;
    this.connection = new HubConnection({
      hubUrl: this.options.hubUrl,
      instanceId: this.options.instanceId,
      joinToken: this.options.joinToken,
      hubFingerprint: this.options.settings.hubFingerprint,
      log: this.log,
      reconnectMinMs: this.options.reconnectMinMs,
      reconnectMaxMs: this.options.reconnectMaxMs,
      heartbeatIntervalMs: this.options.heartbeatIntervalMs,
      hello: () => this.hello(),
      heartbeat: () => {
        // Reported with the next beat: a slow server never delays this one.
        for (const server of this.servers.values()) void server.refreshActivity();
        const checks = this.currentChecks();
        return { type: 'heartbeat', load: load(), servers: this.reports().map((report) => this.withSshWork(report)), ...(checks ? { checks } : {}) };
      },
      onRequest: (request) => this.onRequest(request),
      onRejected: (reason) => this.options.onRejected(reason),
    });
  }

  get state(): AgentState {
    return this.current;
  }

  /** The hub connection's state, for tests and diagnostics. */
  get connectionState(): string {
    return this.connection.state;
  }

  /** Starts the agent: dials the hub and keeps reconnecting until closed. */
  start(): void {
    if (this.current !== 'idle') throw new AgentStateError('start', this.current);
    this.transition('running');
    if (!this.asRoot) this.log.warn('not running as root: servers run as the agent\'s own account (isolation is off)');
    else this.cgroups = this.setUpCgroups();
    const { ssh, address } = this.options.settings;
    if (ssh) {
      this.ssh = startInstanceSshServer({
        internalPublicKey: ssh.internalPublicKey,
        host: address,
        resolveUser: (name) => this.sshUser(name),
        log: this.log.child({ component: 'ssh' }),
      }).then(
        (server) => (this.sshServer = server),
        (error: unknown) => {
          this.log.error({ err: (error as Error).message }, 'instance SSH server did not start; SSH to this instance is off');
          return undefined;
        },
      );
    }
    if (this.options.settings.relay) {
      this.relay = startRelay({
        address,
        tokenOf: (port) => {
          for (const server of this.servers.values()) {
            const token = server.tokenForPort(port);
            if (token !== undefined) return token;
          }
          return undefined;
        },
        log: this.log.child({ component: 'relay' }),
      }).then(
        (relay) => (this.relayServer = relay),
        (error: unknown) => {
          this.log.error({ err: (error as Error).message }, 'the server relay did not start; servers cannot be reached');
          return undefined;
        },
      );
    }
    if (this.options.settings.jupyter.forkServer !== false) {
      const forks = new ForkServer({ socketDir: forkServerSocketDir(this.options.settings), log: this.log.child({ component: 'forkserver' }) });
      this.forks = forks;
      // Starts meanwhile exec; a fork server that dies is restarted by the client itself.
      forks.start().catch((error: unknown) => this.log.error({ err: (error as Error).message }, 'fork server did not start; servers start by exec'));
    }
    if (!this.share) {
      this.connection.start();
      return;
    }
    // Dial once the first mount attempt is over (it may take share.mount.timeout): the hub waits only seconds for a hello.
    const share = this.share;
    share.start();
    void share.settled.then(() => {
      if (this.current === 'running') this.connection.start();
    });
  }

  /**
   * Stops every server (SIGTERM, then SIGKILL after the grace period) and closes the connection. Runs every
   * step even if one fails; a second call returns the first call's promise.
   */
  close(): Promise<void> {
    this.closePromise ??= (async () => {
      this.transition('closing');
      this.share?.close();
      const results = await Promise.allSettled([...this.servers.values()].map((server) => server.stop()));
      for (const result of results) {
        if (result.status === 'rejected') this.log.error({ err: (result.reason as Error).message }, 'stopping a server failed');
      }
      // Each stopped server ends its user's session here; the instance may be going away, so wait for that.
      await Promise.allSettled([...this.ending]);
      await this.forks?.close().catch((error: unknown) => this.log.error({ err: (error as Error).message }, 'closing the fork server failed'));
      // Whatever is still in the instance's cgroup (a session that never finished starting) goes with the agent.
      if (this.cgroups) {
        await killInstanceCgroup(this.cgroups, this.instanceCgroup, 0).catch((error: unknown) => {
          this.log.error({ err: (error as Error).message }, 'clearing the instance cgroup failed');
        });
      }
      await this.ssh
        .then((server) => server?.close())
        .catch((error: unknown) => this.log.error({ err: (error as Error).message }, 'closing the SSH server failed'));
      await this.relay
        .then((relay) => relay?.close())
        .catch((error: unknown) => this.log.error({ err: (error as Error).message }, 'closing the server relay failed'));
      await this.connection.close().catch((error: unknown) => this.log.error({ err: (error as Error).message }, 'closing the hub connection failed'));
      this.transition('closed');
      this.resolveDone();
    })();
    return this.closePromise;
  }

  /** Finds the host's cgroups and makes the instance's folder; without them sessions run unlimited (logged). */
  private setUpCgroups(): CgroupHost | undefined {
    const host = detectCgroups();
    if (!host) {
      this.log.warn('no cgroup controllers on this host: sessions run without memory, CPU and process limits, and what a user detaches is found by its environment');
      return undefined;
    }
    try {
      prepareInstanceCgroup(host, this.instanceCgroup);
    } catch (error) {
      this.log.error({ err: (error as Error).message }, 'cannot make the instance\'s cgroup: sessions run without limits');
      return undefined;
    }
    this.log.info({ version: host.version, cgroup: this.instanceCgroup }, 'sessions get their own cgroups');
    return host;
  }

  private transition(to: AgentState): void {
    const from = this.current;
    if (!TRANSITIONS[from].includes(to)) throw new AgentStateError(`go to "${to}"`, from);
    this.current = to;
    this.log.info({ from, to }, 'agent state');
  }

  private reports(): ServerReport[] {
    return [...this.servers.values()].map((server) => server.report()).filter((report): report is ServerReport => report !== undefined);
  }

  /** Adds the work of the user's SSH sessions on this instance (foreground jobs, keystrokes) to their server's. */
  private withSshWork(report: ServerReport): ServerReport {
    const sessions = this.sshServer?.sessions().filter((session) => session.user === report.user) ?? [];
    if (sessions.length === 0) return report;
    const work = mergeWork(report.work, sshWork(sessions, Date.now()));
    return { ...report, work, ...(work.lastWork === undefined ? {} : { lastActivity: work.lastWork }) };
  }

  private async hello(): Promise<AgentMessage> {
    // Servers are reported by their relay URLs: the relay must be up before the hub hears of them.
    await this.relay;
    // The share is mounted and probed before the instance can be ready (the first attempt, which may fail).
    await this.share?.settled;
    const checks = await runChecks(this.options.settings, this.share ? { ok: true } : undefined);
    this.hostChecks = checks;
    if (checks.detail) this.log.warn({ detail: checks.detail }, 'instance checks failed');
    return {
      type: 'hello',
      instanceId: this.options.instanceId,
      version: this.options.version,
      address: this.options.settings.address,
      capacity: capacity(await detectGpus(this.options.settings.gpuCommand, this.options.settings.jupyter.path)),
      isolation: this.asRoot,
      checks: this.currentChecks() ?? checks,
      ...(await this.sshHello()),
      servers: this.reports(),
    };
  }

  /** The last `hello`'s checks with the share keeper's status now; undefined without a keeper (nothing changes). */
  private currentChecks(): HostChecks | undefined {
    if (!this.share || !this.hostChecks) return undefined;
    const share = this.share.status;
    const detail = [this.hostChecks.detail, share.ok ? undefined : share.detail].filter((d) => d !== undefined).join('; ');
    const checks: HostChecks = { share: share.ok, jupyter: this.hostChecks.jupyter };
    if (this.hostChecks.identity !== undefined) checks.identity = this.hostChecks.identity;
    if (detail) checks.detail = detail;
    return checks;
  }

  private async sshHello(): Promise<{ sshPort: number | null; sshHostKey?: string }> {
    const server = await this.ssh;
    return server ? { sshPort: server.port, sshHostKey: server.hostPublicKey } : { sshPort: null };
  }

  /** SSH lands only where the user's server runs, as the same account, with the environment Jupyter has. */
  private sshUser(name: string): SshUser | undefined {
    // With cgroups, only a server whose cgroup exists: the shell joins it (its limits, and it ends with the session).
    const server = [...this.servers.values()].find((s) => s.user.name === name && s.state !== 'stopping' && (!this.cgroups || s.cgroup));
    if (!server) return undefined;
    const { home } = userPaths(this.options.settings, name);
    const uid = this.asRoot ? server.user.uid : (process.getuid?.() ?? server.user.uid);
    const gid = this.asRoot ? server.user.gid : (process.getgid?.() ?? server.user.gid);
    const spec = server.spawnSpec('/bin/bash', [], {}, home);
    return { uid, gid, home, shell: '/bin/bash', env: server.shellEnv(), ...(spec.groups ? { groups: spec.groups } : {}), cgroupProcs: spec.cgroupProcs };
  }

  private onRequest(request: Request): void {
    const reply = (message: AgentMessage): void => {
      this.connection.send(message);
    };
    this.handle(request.method, request.params)
      .then((result) => reply({ type: 'reply', id: request.id, ok: true, result }))
      .catch((error: unknown) => {
        const body =
          error instanceof AgentError
            ? { code: error.code, message: error.message }
            : { code: AgentErrorCode.internal, message: (error as Error)?.message ?? String(error) };
        this.log.warn({ method: request.method, id: request.id, code: body.code, err: body.message }, 'request failed');
        reply({ type: 'reply', id: request.id, ok: false, error: body });
      })
      .finally(() => {
        if (request.method === 'shutdown') void this.close();
      });
  }

  private async handle<M extends AgentMethod>(method: M, params: unknown): Promise<AgentMethods[M]['result']>;
  private async handle(method: AgentMethod, params: unknown): Promise<unknown> {
    switch (method) {
      case 'startServer':
        return this.startServer(params);
      case 'stopServer':
        return this.stopServer(params);
      case 'notify':
        return this.notify(params);
      case 'shutdown':
        return this.shutdown();
    }
  }

  private async startServer(raw: unknown): Promise<AgentMethods['startServer']['result']> {
    const parsed = startServerParamsSchema.safeParse(raw);
    if (!parsed.success) throw new BadRequestError('startServer', parsed.error.issues.map((issue) => `${issue.path.join('.') || 'params'}: ${issue.message}`));
    const params = parsed.data;
    // The name becomes a Unix account and a path component: never trust it blindly.
    const nameProblem = usernameProblem(params.user.name);
    if (nameProblem) throw new BadRequestError('startServer', [`user.name "${params.user.name}" ${nameProblem}`]);
    if (params.user.uid < MIN_USER_ID || params.user.gid < MIN_USER_ID) {
      throw new AccountError(params.user.name, `refusing UID ${params.user.uid} / GID ${params.user.gid}: pool users get IDs of ${MIN_USER_ID} or more, never a system account's`);
    }
    if (this.current !== 'running') throw new AgentStateError('start a server', this.current);
    // Never lay out a user's folders in the directory under a share that is away.
    const share = this.share?.status;
    if (share && !share.ok) throw new ShareUnavailableError(this.options.settings.sharePath, share.detail ?? 'the share is not mounted');
    const existing = this.servers.get(params.sessionId);
    if (existing) {
      // A hub that lost our reply (reconnect) may ask again: the same session gets the same server.
      if (existing.user.name === params.user.name && existing.state !== 'stopping') return existing.start();
      throw new SessionExistsError(params.sessionId);
    }
    // Behind the relay, servers listen on the instance's loopback only; the gateway reaches them through it.
    const relay = this.relayServer;
    if (this.options.settings.relay && !relay) throw new AgentError(AgentErrorCode.startFailed, 'this instance\'s server relay is not running, so no server here could be reached');
    const server = new UserServer(params, {
      settings: relay ? { ...this.options.settings, address: '127.0.0.1' } : this.options.settings,
      ...(relay ? { publicUrl: (port: number) => relay.urlOf(port) } : {}),
      log: this.log,
      asRoot: this.asRoot,
      stopGraceMs: this.options.stopGraceMs,
      readinessPollMs: this.options.readinessPollMs,
      cgroups: this.cgroups,
      instanceCgroup: this.instanceCgroup,
      sessionPidsMax: this.options.sessionPidsMax,
      onProgress: (percent, message, phase) => {
        this.connection.send({ type: 'progress', sessionId: params.sessionId, percent, message, ...(phase === undefined ? {} : { phase }) });
      },
      forks: this.forks,
      onUnexpectedExit: (exit) => {
        this.log.warn({ session: params.sessionId, code: exit.code, signal: exit.signal }, 'server exited on its own');
        this.connection.send({ type: 'serverExited', sessionId: params.sessionId, code: exit.code, signal: exit.signal, detail: exit.detail });
      },
    });
    this.servers.set(params.sessionId, server);
    void server.exited.then(() => {
      if (this.servers.get(params.sessionId) === server) this.servers.delete(params.sessionId);
      const ending = this.endSession(params.user, server).catch((error: unknown) => {
        this.log.error({ err: (error as Error).message, user: params.user.name }, 'ending the session failed');
      });
      this.ending.add(ending);
      void ending.finally(() => this.ending.delete(ending));
    });
    return server.start();
  }

  /**
   * One of a user's sessions on this instance is over (its server exited). When it was their last one here, their SSH
   * connections go and, as root, everything in the session's cgroup — whatever it detached, under any environment —
   * all of which could hold GPUs the hub now grants to others. When the user still has another session here, that
   * session's cgroup takes over what this one left running.
   */
  private async endSession(user: AgentUser, ended: UserServer): Promise<void> {
    const cgroup = ended.cgroup;
    const mine = (): UserServer[] => [...this.servers.values()].filter((s) => s.user.name === user.name);
    const heir = mine().find((s) => s.cgroup !== undefined);
    if (mine().length > 0 && (cgroup === undefined || heir?.cgroup !== undefined)) {
      if (cgroup && heir?.cgroup) {
        cgroup.moveTo(heir.cgroup);
        await cgroup.remove();
      }
      return;
    }
    (await this.ssh)?.endUser(user.name, 'your server on this instance has stopped; this SSH session ends with it');
    if (!this.asRoot) return;
    // After the SSH hang-up had its chance, so shells end the usual way first (no waiting when the agent closes).
    if (this.current === 'running') await new Promise((resolve) => setTimeout(resolve, 1_000));
    let found: number;
    if (cgroup) {
      found = await cgroup.kill(this.options.stopGraceMs);
      await cgroup.remove();
    } else {
      // No cgroups on this host: find them by their instance-local runtime dir (what `env` changes escape).
      const { runtimeDir } = userPaths(this.options.settings, user.name);
      found = await endLeftovers(user.uid, runtimeDir, this.options.stopGraceMs, () => mine().length === 0);
    }
    if (found > 0) this.log.info({ user: user.name, processes: found }, 'ended what the user left running on this instance');
  }

  private async stopServer(raw: unknown): Promise<AgentMethods['stopServer']['result']> {
    const parsed = stopServerParamsSchema.safeParse(raw);
    if (!parsed.success) throw new BadRequestError('stopServer', parsed.error.issues.map((issue) => `${issue.path.join('.') || 'params'}: ${issue.message}`));
    const server = this.servers.get(parsed.data.sessionId);
    if (!server) return { stopped: false };
    await server.stop();
    return { stopped: true };
  }

  private async notify(raw: unknown): Promise<AgentMethods['notify']['result']> {
    const parsed = notifyParamsSchema.safeParse(raw);
    if (!parsed.success) throw new BadRequestError('notify', parsed.error.issues.map((issue) => `${issue.path.join('.') || 'params'}: ${issue.message}`));
    const server = await this.ssh;
    return { delivered: server ? server.notify(parsed.data.user, parsed.data.message) : 0 };
  }

  private async shutdown(): Promise<AgentMethods['shutdown']['result']> {
    const servers = [...this.servers.values()];
    await Promise.allSettled(servers.map((server) => server.stop()));
    return { stopped: servers.length };
  }
}
