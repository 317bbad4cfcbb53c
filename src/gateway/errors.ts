// Errors raised by the gateway, each with a stable `code` mapped to its HTTP status in one table.

/** Stable codes of the errors the gateway answers with; `GATEWAY_ERROR_STATUS` maps each to its HTTP status. */
export type GatewayErrorCode =
  | 'bad_request'
  | 'not_found'
  | 'unauthenticated'
  | 'forbidden'
  | 'origin_refused'
  | 'origin_missing'
  | 'confirmation_required'
  | 'server_not_running'
  | 'hub_unavailable'
  | 'backend_unreachable'
  | 'invalid_state';

/** The one table from error code to HTTP status. */
export const GATEWAY_ERROR_STATUS: Readonly<Record<GatewayErrorCode, number>> = {
  bad_request: 400,
  not_found: 404,
  unauthenticated: 401,
  forbidden: 403,
  origin_refused: 403,
  origin_missing: 403,
  confirmation_required: 403,
  server_not_running: 503,
  hub_unavailable: 503,
  backend_unreachable: 502,
  invalid_state: 500,
};

/** Base class: every gateway error carries a stable `code` and the HTTP `status` it maps to. */
export abstract class GatewayError extends Error {
  abstract readonly code: GatewayErrorCode;
  get status(): number {
    return GATEWAY_ERROR_STATUS[this.code];
  }
}

/**
 * Thrown by the hub link's `lookup()` when the hub cannot answer an auth lookup: the link is not open, it closed
 * while the lookup waited, or the hub did not answer within `authTimeoutMs`. The gateway answers 503.
 */
export class HubUnavailableError extends GatewayError {
  override readonly name = 'HubUnavailableError';
  readonly code = 'hub_unavailable';
  constructor(
    /** The hub link's state when the lookup failed. */
    readonly linkState: string,
    options?: { cause?: unknown },
  ) {
    super(`hub unavailable (link ${linkState})`, options);
  }
}

/** Thrown when a call is illegal in a component's current state (e.g. `listen()` after `close()`). */
export class InvalidStateError extends GatewayError {
  override readonly name = 'InvalidStateError';
  readonly code = 'invalid_state';
  constructor(
    readonly component: string,
    readonly state: string,
    readonly action: string,
  ) {
    super(`${component}: cannot ${action} while ${state}`);
  }
}

/** Thrown by `close()` when one or more cleanup steps failed; every step still ran. */
export class GatewayCloseError extends AggregateError {
  override readonly name = 'GatewayCloseError';
  readonly code = 'close_failed';
  constructor(
    readonly component: string,
    errors: readonly unknown[],
  ) {
    super(errors, `${component}: ${errors.length} cleanup step(s) failed`);
  }
}
