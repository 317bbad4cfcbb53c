import { execFileSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { afterAll, describe, expect, it } from 'vitest';
import { TlsPinError } from './errors.js';
import { certificateFingerprint, ensureTlsIdentity, normalizeFingerprint, pinnedConnect, selfSignedIdentity } from './tls.js';

const dir = mkdtempSync(join(tmpdir(), 'dspool-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A TLS server with `identity` that records every byte it receives. */
async function recordingServer(identity: { key: string; cert: string }): Promise<{ port: number; received: () => number; close: () => void }> {
  let bytes = 0;
  const sockets = new Set<Socket>();
  const server = tls.createServer({ key: identity.key, cert: identity.cert }, (socket) => {
    sockets.add(socket);
    socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    received: () => bytes,
    close: () => {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

function connect(port: number, fingerprint: string): Promise<Socket> {
  return new Promise((resolve, reject) => pinnedConnect({ host: '127.0.0.1', port, fingerprint }, (error, socket) => (error ? reject(error) : resolve(socket as Socket))));
}

describe('self-signed TLS identities', () => {
  it('makes an ECDSA P-256 certificate that OpenSSL reads, with the fingerprint OpenSSL computes', () => {
    const identity = selfSignedIdentity('dspool test');
    const cert = new X509Certificate(identity.cert);
    expect(cert.subject).toBe('CN=dspool test');
    expect(cert.checkPrivateKey(createPrivateKey(identity.key))).toBe(true);
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe('prime256v1');
    expect(new Date(cert.validTo).getTime()).toBeGreaterThan(Date.now() + 365 * 86_400_000);
    const file = join(dir, 'cert.pem');
    writeFileSync(file, identity.cert);
    const text = execFileSync('openssl', ['x509', '-in', file, '-noout', '-fingerprint', '-sha256', '-text'], { encoding: 'utf8' });
    expect(text).toContain('Version: 3');
    expect(text).toContain('ecdsa-with-SHA256');
    expect(normalizeFingerprint(/Fingerprint=(\S+)/.exec(text)?.[1] ?? '')).toBe(identity.fingerprint);
    expect(certificateFingerprint(identity.cert)).toBe(identity.fingerprint);
  });

  it('never makes a certificate that does not parse (a serial starting 0x00 is not DER: it failed one in 256)', () => {
    for (let i = 0; i < 2000; i++) {
      const { cert } = selfSignedIdentity(`n${i}`, 1);
      const serial = new X509Certificate(cert).serialNumber;
      expect(serial).toMatch(/^[4-7][0-9A-F]{31}$/);
    }
  }, 60_000);

  it('keeps one identity in its files: the key 0600, the same fingerprint on the next start', () => {
    const key = join(dir, 'secrets', 'hub.key');
    const cert = join(dir, 'hub.crt');
    const first = ensureTlsIdentity(key, cert, 'dspool hub');
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'secrets')).mode & 0o777).toBe(0o700);
    expect(ensureTlsIdentity(key, cert, 'dspool hub').fingerprint).toBe(first.fingerprint);
    expect(readFileSync(cert, 'utf8')).toBe(first.cert);
  });

  it('reads fingerprints as people paste them and refuses what is not one', () => {
    const hex = 'ab'.repeat(32);
    expect(normalizeFingerprint(`sha256:${hex}`)).toBe(`sha256:${hex}`);
    expect(normalizeFingerprint(`SHA256:${'AB:'.repeat(31)}AB`)).toBe(`sha256:${hex}`);
    expect(normalizeFingerprint(hex.toUpperCase())).toBe(`sha256:${hex}`);
    expect(normalizeFingerprint('sha256:abc')).toBeUndefined();
    expect(normalizeFingerprint(`sha1:${hex}`)).toBeUndefined();
  });
});

describe('pinned TLS connections', () => {
  it('connects to the peer holding the pinned certificate', async () => {
    const identity = selfSignedIdentity('right');
    const server = await recordingServer(identity);
    const socket = await connect(server.port, identity.fingerprint);
    socket.write('hello');
    await expect.poll(() => server.received()).toBe(5);
    socket.destroy();
    server.close();
  });

  it('refuses a peer with another certificate before sending it a single byte', async () => {
    const pinned = selfSignedIdentity('pinned');
    const impostor = await recordingServer(selfSignedIdentity('impostor'));
    const error = await connect(impostor.port, pinned.fingerprint).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(TlsPinError);
    expect((error as TlsPinError).expected).toBe(pinned.fingerprint);
    expect((error as TlsPinError).message).toMatch(/not the pinned sha256:[0-9a-f]{64}: refusing/);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(impostor.received()).toBe(0);
    impostor.close();
  });
});
