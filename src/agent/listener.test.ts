import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { listenerOwnedBy, listeningInodes } from './listener.js';

const listen = (host: string) =>
  new Promise<{ server: Server; port: number }>((resolve) => {
    const server = createServer();
    server.listen(0, host, () => resolve({ server, port: (server.address() as { port: number }).port }));
  });

describe.skipIf(process.platform !== 'linux')('listenerOwnedBy', () => {
  const other = spawn('sleep', ['60'], { stdio: 'ignore' });
  afterAll(() => other.kill('SIGKILL'));

  it('is true for the process that holds the listener and false for any other', async () => {
    const { server, port } = await listen('127.0.0.1');
    try {
      expect(listeningInodes(process.pid, '127.0.0.1', port)).toHaveLength(1);
      expect(listenerOwnedBy([process.pid], '127.0.0.1', port)).toBe(true);
      expect(listenerOwnedBy([other.pid ?? 0], '127.0.0.1', port)).toBe(false);
    } finally {
      server.close();
    }
  });

  it('is false while nothing listens on the port', async () => {
    const { server, port } = await listen('127.0.0.1');
    await new Promise((resolve) => server.close(resolve));
    expect(listenerOwnedBy([process.pid], '127.0.0.1', port)).toBe(false);
  });

  it('sees a wildcard and an IPv6 listener', async () => {
    const wildcard = await listen('0.0.0.0');
    const v6 = await listen('::1').catch(() => undefined);
    try {
      expect(listenerOwnedBy([process.pid], '127.0.0.1', wildcard.port)).toBe(true);
      if (v6) expect(listenerOwnedBy([process.pid], '::1', v6.port)).toBe(true);
    } finally {
      wildcard.server.close();
      v6?.server.close();
    }
  });
});
