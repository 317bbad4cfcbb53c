// The agent's TLS relay, shared by the agent (which serves it) and the gateway (which dials it): how a server
// behind it is named in a route, and the one line the gateway sends first on each connection.
//
// On an instance on another machine (provider static or slurm, without `hub.privateNetwork`), users' Jupyter
// servers listen on the instance's loopback only; the agent listens with TLS on the instance's address, with a
// certificate it made at start. The server's URL the agent reports (and the hub routes to) is
// `dspool-relay://<address>:<relay port>/<server port>?fingerprint=sha256:<hex>`. The gateway opens TLS to
// `<address>:<relay port>`, pins that fingerprint, sends `DSPOOL-RELAY 1 <server port> <server token>\n`, then
// speaks HTTP as it would to the server itself. The agent relays only to the loopback port of a server it runs
// whose token that is; anything else gets an HTTP 502 naming the reason, and the connection is closed.
import { hostOfUrl, urlHost } from '../lib/address.js';
import { normalizeFingerprint } from '../lib/tls.js';

export const RELAY_PROTOCOL = 'dspool-relay:';
/** First word of the preamble line. */
export const RELAY_MAGIC = 'DSPOOL-RELAY';
/** Longest preamble line the agent reads, in bytes (a token is 43 characters). */
export const RELAY_PREAMBLE_MAX = 512;

/** A server behind an agent's relay, as named in its URL. */
export interface RelayTarget {
  /** The instance's address (IPv6 without brackets). */
  readonly host: string;
  readonly relayPort: number;
  /** The server's port on the instance's loopback. */
  readonly serverPort: number;
  /** `sha256:<hex>` of the relay's certificate. */
  readonly fingerprint: string;
}

/**
 * The URL of a server behind a relay.
 *
 * @example
 * relayUrl({ host: '10.0.0.5', relayPort: 41000, serverPort: 40123, fingerprint });
 * // 'dspool-relay://10.0.0.5:41000/40123?fingerprint=sha256:…'
 */
export function relayUrl(target: RelayTarget): string {
  return `${RELAY_PROTOCOL}//${urlHost(target.host)}:${target.relayPort}/${target.serverPort}?fingerprint=${target.fingerprint}`;
}

/**
 * The relay target of a URL, or `undefined` when it is not a well-formed relay URL.
 *
 * @example
 * parseRelayUrl('dspool-relay://10.0.0.5:41000/40123?fingerprint=sha256:…')?.serverPort; // 40123
 */
export function parseRelayUrl(text: string): RelayTarget | undefined {
  if (!text.startsWith(RELAY_PROTOCOL)) return undefined;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  const relayPort = Number(url.port);
  const serverPort = Number(url.pathname.slice(1));
  const fingerprint = normalizeFingerprint(url.searchParams.get('fingerprint') ?? '');
  if (!isPort(relayPort) || !isPort(serverPort) || fingerprint === undefined || url.hostname === '') return undefined;
  return { host: hostOfUrl(url), relayPort, serverPort, fingerprint };
}

/**
 * The line the gateway sends first on a relay connection.
 *
 * @example
 * socket.write(relayPreamble(40123, token));
 */
export function relayPreamble(serverPort: number, token: string): string {
  return `${RELAY_MAGIC} 1 ${serverPort} ${token}\n`;
}

/**
 * A preamble line (without its newline) as `{ serverPort, token }`, or `undefined` when it is not one.
 *
 * @example
 * parseRelayPreamble('DSPOOL-RELAY 1 40123 abc…'); // { serverPort: 40123, token: 'abc…' }
 */
export function parseRelayPreamble(line: string): { serverPort: number; token: string } | undefined {
  const [magic, version, port, token, ...rest] = line.split(' ');
  const serverPort = Number(port);
  if (magic !== RELAY_MAGIC || version !== '1' || rest.length > 0 || !isPort(serverPort) || !token) return undefined;
  return { serverPort, token };
}

function isPort(value: number): boolean {
  return Number.isInteger(value) && value > 0 && value < 65_536;
}
