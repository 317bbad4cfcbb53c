// The one interface every engine implements (local, static, Slurm, Kubernetes, Azure VMSS).
//
// A provider only creates and deletes instances and says which exist. It does not talk to agents, place
// sessions or judge health: the hub does, over the agent's own connection. The provider owns whatever
// connection it needs to its engine (none for `local`) and releases it in `close()`. Providers import
// nothing from `hub/`; the hub receives one through `createProvider`.
import type { AgentSettings } from '../protocol/agent.js';

/** What the hub asks a provider to create. The agent on the new instance dials `hubUrl` with `joinToken`. */
export interface InstanceSpec {
  /** Hub-assigned id, e.g. `i-3f9c2a`; stable for the instance's life. */
  readonly id: string;
  readonly hubUrl: string;
  /** Secret the agent presents when it joins; handed to it through its environment, never its arguments. */
  readonly joinToken: string;
  /** Agent settings the provider completes with the instance's own `address` and `scratchDir`. */
  readonly settings: Omit<AgentSettings, 'address' | 'scratchDir'>;
}

/** An instance as its engine knows it. */
export interface ProviderInstance {
  readonly id: string;
  /** Address the instance's servers bind to (what the gateway dials). */
  readonly address: string;
  /** Engine details shown to operators (local: `pid`; Slurm: `job_id`), snake_case keys. */
  readonly details: Readonly<Record<string, string | number>>;
}

/** Options for `Provider.delete`. */
export interface DeleteOptions {
  /**
   * How long the agent gets to stop its servers before it is killed, in milliseconds.
   * @default 10000
   */
  readonly graceMs?: number;
}

/** An instance its engine knows is gone without the hub asking (see `Provider.watchGone`). */
export interface InstanceGone {
  readonly id: string;
  /** What the engine saw, for events and logs: `its agent process was killed by SIGKILL`, `job 42 ended`. */
  readonly reason: string;
}

/** What `Provider.claim` hands a joining machine: everything its agent needs, the instance's credential included. */
export interface ClaimedInstance {
  readonly id: string;
  /** The instance's own credential (its join token); the agent keeps it in a root-only file. */
  readonly joinToken: string;
  readonly settings: InstanceSpec['settings'];
  /** The address its servers bind to (the host's). */
  readonly address: string;
}

export interface Provider {
  /** Engine name as written in pool.yaml `provider.type`. */
  readonly type: string;
  /** Starts an instance; resolves once its agent process is launched (it joins the hub on its own). */
  create(spec: InstanceSpec): Promise<ProviderInstance>;
  /** Stops and removes an instance, its local disk included. Deleting an unknown or gone instance resolves. */
  delete(id: string, options?: DeleteOptions): Promise<void>;
  /** Instances that exist in the engine now (used to re-adopt them after a hub restart). */
  list(): Promise<ProviderInstance[]>;
  /**
   * Optional, for engines whose machines join on their own (`static`): gives the machine at `host` (its address as
   * the hub saw it connect) an instance made by `create` that no machine holds yet. Throws an error with a stable
   * `code` when the host is not one of the engine's or no instance is free for it.
   */
  claim?(host: string): Promise<ClaimedInstance>;
  /** Releases the provider's own resources; never deletes instances. Safe to call twice. */
  close(): Promise<void>;
  /**
   * Optional. Subscribes to instances the engine *knows* are gone (their agent process exited, their Slurm job ended
   * — time limit, node failure, `scancel` —, their VM was deleted) without a `delete` from the hub; returns the unsubscribe function. The hub fails such an
   * instance at once instead of waiting `pool.repair.failAfter` on its silence. Never called for an instance the
   * hub is deleting, nor for a mere silence (a network cut, a scheduler that does not answer): not knowing is not a
   * loss; that is the heartbeat rules' to judge. An engine that
   * cannot tell leaves this out. Listeners are called synchronously and must not throw.
   *
   * @example
   * const stop = provider.watchGone?.(({ id, reason }) => pool.lostByProvider(id, reason));
   */
  watchGone?(listener: (gone: InstanceGone) => void): () => void;
}
