// The agent's options, with every default filled in by `agentDefaults` and nowhere else.
import { createLogger, type Logger } from '../lib/log.js';
import { VERSION } from '../lib/version.js';
import type { AgentSettings } from '../protocol/agent.js';

/** What one agent needs to run. `readAgentEnv` builds this from the environment a provider sets. */
export interface AgentOptions {
  /** Base URL of the hub's internal port, e.g. `http://127.0.0.1:8081`; `AGENT_PATH` is appended. */
  readonly hubUrl: string;
  /** Hub-assigned instance id, sent in `x-dspool-instance` and `hello`. */
  readonly instanceId: string;
  /** Secret presented as `Authorization: Bearer`; never logged. */
  readonly joinToken: string;
  readonly settings: AgentSettings;
  /**
   * Logger for the agent.
   * @default a pino logger named `agent` on stderr at `settings.logLevel`
   */
  readonly log?: Logger;
  /**
   * First delay before reconnecting to the hub after the connection drops, in milliseconds; doubles per failed
   * attempt up to `reconnectMaxMs`.
   * @default 250
   */
  readonly reconnectMinMs?: number;
  /**
   * Longest delay between reconnect attempts, in milliseconds.
   * @default 10000
   */
  readonly reconnectMaxMs?: number;
  /**
   * Heartbeat interval used until the hub's `welcome` says otherwise, in milliseconds.
   * @default 5000
   */
  readonly heartbeatIntervalMs?: number;
  /**
   * How long a stopping server gets after SIGTERM before SIGKILL, in milliseconds.
   * @default 5000
   */
  readonly stopGraceMs?: number;
  /**
   * How often a starting server's `api/status` is polled, in milliseconds.
   * @default 200
   */
  readonly readinessPollMs?: number;
  /**
   * Most processes and threads one session may run at once on the instance (its cgroup's pids limit; as root, on a
   * host with the pids controller): a fork bomb stops there instead of starving everyone. 0: no limit.
   * @default 4096
   */
  readonly sessionPidsMax?: number;
  /**
   * Called when the hub says this instance no longer exists (its credential is refused); a joined machine then
   * stops this agent and joins again as a new instance.
   * @default nothing (the agent keeps retrying, as a provider-made instance that is about to be deleted does)
   */
  readonly onRejected?: (reason: string) => void;
  /**
   * Version reported in `hello`.
   * @default the `version` of dspool's package.json
   */
  readonly version?: string;
}

/** `AgentOptions` with every default filled in. */
export type ResolvedAgentOptions = Required<AgentOptions>;

/**
 * Fills in every default of `AgentOptions`; the only place agent defaults live.
 *
 * @example
 * const resolved = agentDefaults({ hubUrl, instanceId, joinToken, settings });
 * resolved.stopGraceMs; // 5000
 */
export function agentDefaults(options: AgentOptions): ResolvedAgentOptions {
  return {
    hubUrl: options.hubUrl,
    instanceId: options.instanceId,
    joinToken: options.joinToken,
    settings: options.settings,
    log: options.log ?? createLogger('agent', options.settings.logLevel),
    reconnectMinMs: options.reconnectMinMs ?? 250,
    reconnectMaxMs: options.reconnectMaxMs ?? 10_000,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 5000,
    stopGraceMs: options.stopGraceMs ?? 5000,
    readinessPollMs: options.readinessPollMs ?? 200,
    sessionPidsMax: options.sessionPidsMax ?? 4096,
    version: options.version ?? VERSION,
    onRejected: options.onRejected ?? (() => undefined),
  };
}
