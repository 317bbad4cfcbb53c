// The two SSH messages ssh2 has no public API for, written through its protocol object: a user-auth banner sent
// at any point of authentication (progress while the hub starts a session) and SSH_MSG_IGNORE (keeps NATs and
// clients from timing out while we wait). Both are harmless to every client: OpenSSH prints banners on stderr
// and drops IGNORE in its packet layer.
import { createRequire } from 'node:module';
import type { Connection } from 'ssh2';

const require = createRequire(import.meta.url);

interface PacketWriter {
  allocStart: number;
  alloc(size: number): Buffer;
  finalize(packet: Buffer): Buffer;
}
interface ProtocolInternals {
  _packetRW?: { write: PacketWriter };
  _destruct?: unknown;
}
type SendPacket = (proto: ProtocolInternals, packet: Buffer) => void;

let sendPacket: SendPacket | undefined;
function sender(): SendPacket | undefined {
  if (sendPacket === undefined) {
    try {
      const utils = require('ssh2/lib/protocol/utils.js') as { sendPacket?: SendPacket };
      sendPacket = utils.sendPacket;
    } catch {
      sendPacket = undefined;
    }
  }
  return sendPacket;
}

const MSG_IGNORE = 2;
const MSG_USERAUTH_BANNER = 53;

function send(conn: Connection, build: (writer: PacketWriter) => Buffer): boolean {
  const proto = (conn as unknown as { _protocol?: ProtocolInternals })._protocol;
  const write = sender();
  if (proto?._packetRW === undefined || write === undefined || proto._destruct === undefined) return false;
  try {
    write(proto, proto._packetRW.write.finalize(build(proto._packetRW.write)));
    return true;
  } catch {
    return false;
  }
}

/**
 * Sends `text` as an SSH user-auth banner; only valid before authentication succeeds. Returns false when the
 * connection is gone or ssh2's internals changed (the caller goes on without progress).
 *
 * @internal
 * @example
 * sendAuthBanner(conn, 'dspool: starting your instance…\r\n');
 */
export function sendAuthBanner(conn: Connection, text: string): boolean {
  const body = text.endsWith('\n') ? text : `${text}\r\n`;
  const len = Buffer.byteLength(body);
  return send(conn, (w) => {
    let p = w.allocStart;
    const packet = w.alloc(1 + 4 + len + 4);
    packet[p] = MSG_USERAUTH_BANNER;
    packet.writeUInt32BE(len, ++p);
    packet.write(body, (p += 4), len, 'utf8');
    packet.writeUInt32BE(0, p + len);
    return packet;
  });
}

/**
 * Sends an SSH_MSG_IGNORE packet: traffic that every peer discards, valid at any point after key exchange.
 *
 * @internal
 * @example
 * const timer = setInterval(() => sendIgnore(conn), 5000);
 */
export function sendIgnore(conn: Connection): boolean {
  return send(conn, (w) => {
    const p = w.allocStart;
    const packet = w.alloc(1 + 4);
    packet[p] = MSG_IGNORE;
    packet.writeUInt32BE(0, p + 1);
    return packet;
  });
}
