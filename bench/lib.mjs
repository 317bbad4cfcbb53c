// Helpers the benchmarks share.
import { createServer } from 'node:net';

/** A free TCP port on loopback (bound once, then released for the process that will use it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}
