// Errors the static provider throws; each has a stable `code` the hub maps to an HTTP status.

/** Thrown by `StaticProvider.claim` when the joining machine's address is not in pool.yaml `provider.hosts`. */
export class HostNotListedError extends Error {
  override readonly name = 'HostNotListedError';
  readonly code = 'host_not_listed';
  constructor(
    readonly host: string,
    readonly hosts: readonly string[],
  ) {
    super(`${host} is not one of provider.hosts (${hosts.join(', ')}); add it to pool.yaml to let it join`);
  }
}

/** Thrown by `StaticProvider.claim` when the machine already holds an instance, or none is free. */
export class NoFreeInstanceError extends Error {
  override readonly name = 'NoFreeInstanceError';
  readonly code = 'no_free_instance';
  constructor(
    readonly host: string,
    readonly holding: string | null,
  ) {
    super(holding ? `${host} already runs instance ${holding}` : `no instance is waiting for a machine to join (the pool is full)`);
  }
}

/** Thrown by `StaticProvider.create` when an instance id cannot be used as a file name. */
export class InvalidStaticInstanceIdError extends Error {
  override readonly name = 'InvalidStaticInstanceIdError';
  readonly code = 'invalid_instance_id';
  constructor(readonly instanceId: string) {
    super(`instance id "${instanceId}" is not usable as a file name (letters, digits, ".", "_", "-"; at most 128)`);
  }
}

/** Thrown by `StaticProvider` methods called after `close()`; names the provider's state. */
export class StaticProviderClosedError extends Error {
  override readonly name = 'StaticProviderClosedError';
  readonly code = 'provider_closed';
  constructor(
    readonly operation: string,
    readonly state: string,
  ) {
    super(`cannot ${operation}: the static provider is ${state}`);
  }
}
