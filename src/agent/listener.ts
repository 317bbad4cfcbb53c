// Who is listening on a TCP port: the agent sends a user's Jupyter token only to a listener that one of that user's
// server processes holds, never to whatever answers on the port (a squatter that bound it first would get the token).
// Linux /proc: the listening sockets of the process's network namespace (/proc/<pid>/net/tcp, tcp6) name an inode,
// and a process holds that socket when one of its /proc/<pid>/fd links reads `socket:[<inode>]`.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { isIPv4, isIPv6 } from 'node:net';

const TCP_LISTEN = '0A';

/**
 * Inodes of the TCP sockets listening on `port` at `address` (or at the wildcard address of its family), as
 * `pid`'s network namespace lists them.
 *
 * @example
 * listeningInodes(process.pid, '127.0.0.1', 8888); // [123456]
 */
export function listeningInodes(pid: number, address: string, port: number): number[] {
  const inodes: number[] = [];
  const wanted = address === 'localhost' ? '127.0.0.1' : address;
  for (const table of ['tcp', 'tcp6']) {
    let text: string;
    try {
      text = readFileSync(`/proc/${pid}/net/${table}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || fields[3] !== TCP_LISTEN) continue;
      const [hexAddress = '', hexPort = ''] = (fields[1] ?? '').split(':');
      if (parseInt(hexPort, 16) !== port) continue;
      const local = decodeAddress(hexAddress);
      if (local === wanted || local === '0.0.0.0' || local === '::' || local === `::ffff:${wanted}`) inodes.push(Number(fields[9]));
    }
  }
  return inodes.filter((inode) => inode > 0);
}

/**
 * Socket inodes `pid` holds open (readable for another user's process only as root).
 *
 * @example
 * socketInodes(server.pid); // Set { 412233, 412240 }, empty when /proc/<pid>/fd cannot be read
 */
export function socketInodes(pid: number): Set<number> {
  const out = new Set<number>();
  let fds: string[];
  try {
    fds = readdirSync(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const fd of fds) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match) out.add(Number(match[1]));
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/**
 * Whether the listener on `address:port` is held by one of `pids` (and only by them: a socket shared with another
 * process, e.g. passed over a Unix socket, counts as not theirs). False when nothing listens there yet.
 *
 * @example
 * if (listenerOwnedBy([server.pid], '127.0.0.1', port)) await fetch(url, { headers: { Authorization: `token ${t}` } });
 */
export function listenerOwnedBy(pids: readonly number[], address: string, port: number): boolean {
  const [first] = pids;
  if (first === undefined) return false;
  const listening = listeningInodes(first, address, port);
  if (listening.length === 0) return false;
  const held = new Set<number>();
  for (const pid of pids) for (const inode of socketInodes(pid)) held.add(inode);
  return listening.every((inode) => held.has(inode));
}

/** `0100007F` → `127.0.0.1`; 32 hex digits (four little-endian words) → a compressed IPv6 address. */
function decodeAddress(hex: string): string {
  if (hex.length === 8) {
    const bytes = [0, 1, 2, 3].map((i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16)).reverse();
    return bytes.join('.');
  }
  if (hex.length !== 32) return '';
  const bytes: number[] = [];
  for (let word = 0; word < 4; word++) {
    const chunk = hex.slice(word * 8, word * 8 + 8);
    bytes.push(...[0, 1, 2, 3].map((i) => parseInt(chunk.slice(i * 2, i * 2 + 2), 16)).reverse());
  }
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0)).toString(16));
  const full = groups.join(':');
  if (full.startsWith('0:0:0:0:0:ffff:')) {
    return `::ffff:${bytes.slice(12).join('.')}`;
  }
  return compressIPv6(full);
}

function compressIPv6(full: string): string {
  // Longest run of zero groups → '::' (enough for the wildcard and loopback this is compared with).
  const best = /(?:^|:)0(?::0)+(?::|$)/.exec(full);
  if (!best) return full;
  const out = `${full.slice(0, best.index)}::${full.slice(best.index + best[0].length)}`;
  return isIPv6(out) || isIPv4(out) ? out : full;
}
