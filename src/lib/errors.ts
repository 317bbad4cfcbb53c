// Errors of the shared helpers in lib/.

/**
 * Passed to the callback of `pinnedConnect` when the peer's TLS certificate is not the pinned one:
 * nothing was sent to that peer.
 */
export class TlsPinError extends Error {
  override readonly name = 'TlsPinError';
  readonly code = 'tls_fingerprint_mismatch';
  constructor(
    readonly peer: string,
    readonly expected: string,
    readonly seen: string | undefined,
  ) {
    super(`${peer} presented a TLS certificate with fingerprint ${seen ?? '(none)'}, not the pinned ${expected}: refusing to talk to it`);
  }
}
