// TLS between the pool's hosts without a certificate authority: self-signed ECDSA P-256 certificates made with
// node:crypto (no openssl binary, no key ever on a command line), named by their SHA-256 fingerprint, and a client
// connect that pins that fingerprint and hands the socket on only after it matched (no byte is sent before).
import { X509Certificate, createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { dirname } from 'node:path';
import tls from 'node:tls';
import { hostOfUrl } from './address.js';
import { TlsPinError } from './errors.js';

/** A certificate, its private key (PEM) and its fingerprint (`sha256:<64 hex>`). */
export interface TlsIdentity {
  readonly key: string;
  readonly cert: string;
  readonly fingerprint: string;
}

/**
 * A fresh self-signed ECDSA P-256 certificate (X.509 v3, valid from a day ago for `validDays`).
 *
 * @example
 * const { key, cert, fingerprint } = selfSignedIdentity('dspool hub');
 * https.createServer({ key, cert });
 */
export function selfSignedIdentity(commonName: string, validDays = 3650): TlsIdentity {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const cert = selfSignedCertificate(commonName, privateKey, publicKey.export({ type: 'spki', format: 'der' }), validDays);
  return { key: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), cert, fingerprint: certificateFingerprint(cert) };
}

/**
 * Reads the identity kept in `keyFile` / `certFile`, or makes one and keeps it there (key 0600 in a 0700 directory).
 *
 * @example
 * const hub = ensureTlsIdentity('/var/lib/dspool/secrets/agent-tls.key', '/var/lib/dspool/agent-tls.crt', 'dspool hub');
 */
export function ensureTlsIdentity(keyFile: string, certFile: string, commonName: string): TlsIdentity {
  try {
    const key = readFileSync(keyFile, 'utf8');
    const cert = readFileSync(certFile, 'utf8');
    createPrivateKey(key);
    return { key, cert, fingerprint: certificateFingerprint(cert) };
  } catch {
    const made = selfSignedIdentity(commonName);
    mkdirSync(dirname(keyFile), { recursive: true, mode: 0o700 });
    writeFileSync(keyFile, made.key, { mode: 0o600 });
    chmodSync(keyFile, 0o600);
    writeFileSync(certFile, made.cert, { mode: 0o644 });
    return made;
  }
}

/**
 * The SHA-256 fingerprint of a certificate (PEM or DER), as dspool prints and pins it.
 *
 * @example
 * certificateFingerprint(cert); // 'sha256:3f2a…' (64 hex digits)
 */
export function certificateFingerprint(cert: string | Buffer): string {
  return fingerprintOfDer(new X509Certificate(cert).raw);
}

/** `sha256:<hex>` of a certificate's DER bytes: the one form pins are written and compared in. */
function fingerprintOfDer(der: Buffer): string {
  return `sha256:${createHash('sha256').update(der).digest('hex')}`;
}

/**
 * A fingerprint as a person may paste it (`sha256:` optional, colons, either case) in dspool's form, or
 * `undefined` when it is not 32 bytes of hex.
 *
 * @example
 * normalizeFingerprint('SHA256:AB:CD:…'); // 'sha256:abcd…'
 */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.trim().replace(/^sha256:/i, '').replace(/:/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? `sha256:${hex}` : undefined;
}

/** Where {@link pinnedConnect} dials. */
export interface PinnedTarget {
  readonly host: string;
  readonly port: number;
  /** `sha256:<hex>` of the certificate the peer must present. */
  readonly fingerprint: string;
  /** Gives up after this long, in milliseconds. @default 10000 */
  readonly timeoutMs?: number;
}

/**
 * Opens TLS to `target` and calls back with the socket once the peer's certificate has the pinned fingerprint;
 * with `TlsPinError` (the socket destroyed, nothing written) when it has another. Shaped like Node's
 * `createConnection(options, callback)` and undici's `connect`, so HTTP clients can use it as is.
 *
 * @example
 * pinnedConnect({ host: '10.0.0.1', port: 8082, fingerprint }, (error, socket) => { … });
 */
export function pinnedConnect(target: PinnedTarget, callback: (error: Error | null, socket?: Socket) => void): void {
  const socket = tls.connect({ host: target.host, port: target.port, rejectUnauthorized: false, ...(isIp(target.host) ? {} : { servername: target.host }) });
  socket.setNoDelay(true);
  let settled = false;
  const finish = (error: Error | null): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    socket.off('error', finish);
    if (error) {
      socket.destroy();
      callback(error);
    } else callback(null, socket);
  };
  const timeoutMs = target.timeoutMs ?? 10_000;
  const timer = setTimeout(() => {
    finish(Object.assign(new Error(`${target.host}:${target.port}: no TLS handshake within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
  }, timeoutMs);
  socket.once('error', finish);
  socket.once('secureConnect', () => {
    const raw = socket.getPeerCertificate().raw as Buffer | undefined;
    const seen = raw ? fingerprintOfDer(raw) : undefined;
    if (seen !== target.fingerprint) finish(new TlsPinError(`${target.host}:${target.port}`, target.fingerprint, seen));
    else finish(null);
  });
}

/**
 * {@link pinnedConnect} for the host and port of `url` (default port 443), as a `createConnection(options, callback)`
 * for Node's `http(s).request` and ws (which wait for the callback), ignoring the options they pass.
 *
 * @example
 * new WebSocket(url, { createConnection: pinnedConnector(url, fingerprint) });
 */
export function pinnedConnector(url: URL, fingerprint: string): (options: unknown, callback: (error: Error | null, socket?: Socket) => void) => undefined {
  const host = hostOfUrl(url);
  const port = Number(url.port || 443);
  return (_options, callback) => {
    pinnedConnect({ host, port, fingerprint }, callback);
    return undefined;
  };
}

function isIp(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(':');
}

// --- a minimal DER encoder: just what a self-signed certificate needs ---

function der(tag: number, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  const n = body.length;
  const length = n < 0x80 ? Buffer.from([n]) : n < 0x100 ? Buffer.from([0x81, n]) : Buffer.from([0x82, n >> 8, n & 0xff]);
  return Buffer.concat([Buffer.from([tag]), length, body]);
}
const seq = (...parts: Buffer[]): Buffer => der(0x30, ...parts);
const oid = (dotted: string): Buffer => {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const bytes = [40 * a + b];
  for (const value of rest) {
    const chunk = [value & 0x7f];
    for (let v = value >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return der(0x06, Buffer.from(bytes));
};
const utcTime = (date: Date): Buffer => der(0x17, Buffer.from(`${date.toISOString().slice(2, 19).replace(/[-T:]/g, '')}Z`));
const name = (commonName: string): Buffer => seq(der(0x31, seq(oid('2.5.4.3'), der(0x0c, Buffer.from(commonName, 'utf8')))));

function selfSignedCertificate(commonName: string, key: KeyObject, spki: Buffer, validDays: number): string {
  const ecdsaWithSha256 = seq(oid('1.2.840.10045.4.3.2'));
  const serial = randomBytes(16);
  // Positive (top bit clear) and minimally encoded (first byte not zero): DER refuses a needless leading 0x00, which a
  // bare `& 0x7f` gave about one certificate in 256 ("illegal padding").
  serial[0] = ((serial[0] ?? 0) & 0x3f) | 0x40;
  const now = Date.now();
  const tbs = seq(
    der(0xa0, der(0x02, Buffer.from([2]))), // v3
    der(0x02, serial),
    ecdsaWithSha256,
    name(commonName),
    seq(utcTime(new Date(now - 86_400_000)), utcTime(new Date(now + validDays * 86_400_000))),
    name(commonName),
    spki,
  );
  const signature = sign('sha256', tbs, key);
  const certificate = seq(tbs, ecdsaWithSha256, der(0x03, Buffer.from([0]), signature));
  const base64 = certificate.toString('base64').replace(/.{64}/g, '$&\n').replace(/\n$/, '');
  return `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`;
}
