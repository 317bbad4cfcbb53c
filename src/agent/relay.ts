// The agent's TLS relay (instances on other machines): the gateway's only way in to users' servers, which listen on
// the instance's loopback. TLS with a certificate made at start (its fingerprint travels in each server's URL to
// the hub over the agent's pinned link, and from there to the gateway); each connection names a server's port and
// that server's token in one preamble line (protocol/relay.ts) and is then relayed to 127.0.0.1:<port> untouched.
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Logger } from '../lib/log.js';
import { sameSecret } from '../lib/secret.js';
import { selfSignedIdentity } from '../lib/tls.js';
import { RELAY_PREAMBLE_MAX, parseRelayPreamble, relayUrl } from '../protocol/relay.js';

/** What the relay needs from the agent. */
export interface RelayContext {
  /** The instance's address: where the relay listens. */
  readonly address: string;
  /** The token of the server the agent runs on this loopback port, or `undefined` when it runs none there. */
  tokenOf(serverPort: number): string | undefined;
  readonly log: Logger;
  /** How long a client has to send its preamble, in milliseconds. @default 10000 */
  readonly preambleTimeoutMs?: number;
}

/** A running relay. */
export interface ServerRelay {
  readonly port: number;
  /** `sha256:<hex>` of its certificate. */
  readonly fingerprint: string;
  /** The URL the hub and gateway know a loopback server on `serverPort` by. */
  urlOf(serverPort: number): string;
  /** Stops listening and ends relayed connections; a second call returns the first one's promise. */
  close(): Promise<void>;
}

/**
 * Starts the relay on `ctx.address` (a free port).
 *
 * @example
 * const relay = await startRelay({ address: '10.0.0.5', tokenOf: (port) => tokens.get(port), log });
 * relay.urlOf(40123); // 'dspool-relay://10.0.0.5:41000/40123?fingerprint=sha256:…'
 */
export async function startRelay(options: RelayContext): Promise<ServerRelay> {
  const ctx: Required<RelayContext> = { ...options, preambleTimeoutMs: options.preambleTimeoutMs ?? 10_000 };
  const identity = selfSignedIdentity('dspool instance relay', 365);
  const open = new Set<net.Socket>();
  const server = tls.createServer({ key: identity.key, cert: identity.cert, minVersion: 'TLSv1.2' }, (client) => {
    open.add(client);
    client.once('close', () => open.delete(client));
    client.on('error', () => undefined);
    client.setNoDelay(true);
    serve(ctx, client, open);
  });
  server.on('tlsClientError', (error) => ctx.log.debug({ err: error.message }, 'relay: TLS handshake failed'));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, ctx.address, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  ctx.log.info({ address: ctx.address, port, fingerprint: identity.fingerprint }, 'server relay listening (TLS)');
  let closing: Promise<void> | undefined;
  return {
    port,
    fingerprint: identity.fingerprint,
    urlOf: (serverPort) => relayUrl({ host: ctx.address, relayPort: port, serverPort, fingerprint: identity.fingerprint }),
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of open) socket.destroy();
      });
      return closing;
    },
  };
}

/** Reads the preamble, checks it, and pipes the client to the server (or answers 502 and closes). */
function serve(ctx: Required<RelayContext>, client: tls.TLSSocket, open: Set<net.Socket>): void {
  let buffered = Buffer.alloc(0);
  const timer = setTimeout(() => refuse(client, 'no preamble in time'), ctx.preambleTimeoutMs);
  const onData = (chunk: Buffer): void => {
    buffered = Buffer.concat([buffered, chunk]);
    const end = buffered.indexOf(0x0a);
    if (end === -1) {
      if (buffered.length > RELAY_PREAMBLE_MAX) finish('preamble too long');
      return;
    }
    const line = buffered.subarray(0, end).toString('latin1');
    const rest = buffered.subarray(end + 1);
    const preamble = end <= RELAY_PREAMBLE_MAX ? parseRelayPreamble(line) : undefined;
    if (!preamble) return finish('not a relay preamble');
    const token = ctx.tokenOf(preamble.serverPort);
    if (token === undefined) return finish(`no server of this instance on port ${preamble.serverPort}`);
    if (!sameSecret(token, preamble.token)) return finish(`wrong token for the server on port ${preamble.serverPort}`);
    finish(undefined, preamble.serverPort, rest);
  };
  const finish = (refusal: string | undefined, serverPort?: number, rest?: Buffer): void => {
    clearTimeout(timer);
    client.off('data', onData);
    if (refusal !== undefined || serverPort === undefined) {
      ctx.log.warn({ from: client.remoteAddress, reason: refusal }, 'relay refused a connection');
      return refuse(client, refusal ?? 'refused');
    }
    client.pause();
    const upstream = net.connect({ host: '127.0.0.1', port: serverPort });
    open.add(upstream);
    upstream.setNoDelay(true);
    upstream.once('close', () => {
      open.delete(upstream);
      if (connected) client.destroy();
    });
    client.once('close', () => upstream.destroy());
    let connected = false;
    upstream.on('error', (error) => {
      ctx.log.debug({ port: serverPort, err: error.message }, 'relay: server connection failed');
      if (!connected) refuse(client, 'the server does not answer');
    });
    upstream.once('connect', () => {
      connected = true;
      if (rest !== undefined && rest.length > 0) upstream.write(rest);
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  };
  client.on('data', onData);
}

function refuse(client: tls.TLSSocket, reason: string): void {
  const body = `dspool relay: ${reason}\n`;
  client.end(`HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}
