// Public-key helpers shared by both SSH hops: parsing OpenSSH key text and checking a client's signature.
import { createHash } from 'node:crypto';
import ssh2 from 'ssh2';
import type { ParsedKey, PublicKeyAuthContext } from 'ssh2';

const { utils } = ssh2;

/**
 * Parses an OpenSSH public or private key (text or Buffer); returns the error instead of throwing.
 *
 * @example
 * const key = parseSshKey(readFileSync('/var/lib/dspool/secrets/ssh_internal_ed25519_key'));
 * if (key instanceof Error) throw key; // otherwise a ParsedKey, key.type === 'ssh-ed25519'
 */
export function parseSshKey(data: string | Buffer): ParsedKey | Error {
  const parsed = utils.parseKey(data);
  if (parsed instanceof Error) return parsed;
  const first = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
  return first ?? new Error('no key found');
}

/**
 * `algo base64 [comment]`: the one-line OpenSSH form of a key's public half.
 *
 * @example
 * publicKeyLine(key, 'dspool host key'); // 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAA… dspool host key'
 */
export function publicKeyLine(key: ParsedKey, comment = ''): string {
  return `${key.type} ${key.getPublicSSH().toString('base64')}${comment ? ` ${comment}` : ''}`;
}

/**
 * SHA256 fingerprint as OpenSSH prints it (`SHA256:…`, no padding).
 *
 * @example
 * fingerprint(key); // 'SHA256:nThbg6kXUpJW…' (43 base64 characters, as `ssh-keygen -lf` prints)
 */
export function fingerprint(key: ParsedKey): string {
  return `SHA256:${createHashB64(key.getPublicSSH())}`;
}

function createHashB64(data: Buffer): string {
  return createHash('sha256').update(data).digest('base64').replace(/=+$/, '');
}

/**
 * A fresh ed25519 key pair in OpenSSH text form, both halves checked to parse.
 *
 * @example
 * const { privateKey, publicKey } = generateEd25519('dspool host key');
 */
export function generateEd25519(comment: string): { privateKey: string; publicKey: string } {
  // ssh2's generator strips leading zero bytes from the public key, so about one key in 256 comes out malformed
  // (mscdex/ssh2#1390, #1513): a host key that then cannot be loaded. Keep only a pair whose halves both parse.
  for (let attempt = 0; attempt < 64; attempt++) {
    const pair = utils.generateKeyPairSync('ed25519', { comment });
    if (!(parseSshKey(pair.private) instanceof Error) && !(parseSshKey(pair.public) instanceof Error)) {
      return { privateKey: pair.private, publicKey: pair.public };
    }
  }
  throw new Error('could not generate a well-formed ed25519 key');
}

/**
 * True when the client's key data is exactly `key` (wire form compared, comment ignored).
 *
 * @example
 * if (!sameKey(internal, ctx.key.data)) return ctx.reject(['publickey']);
 */
export function sameKey(key: ParsedKey, data: Buffer): boolean {
  const mine = key.getPublicSSH();
  return mine.length === data.length && mine.equals(data);
}

/**
 * Checks the signature of a publickey attempt that carries one. A query without a signature returns true (the
 * caller decides whether the key is acceptable before answering it).
 *
 * @example
 * if (!signatureValid(ctx)) return ctx.reject(['publickey']); // a signed attempt whose signature does not verify
 */
export function signatureValid(ctx: PublicKeyAuthContext): boolean {
  if (ctx.signature === undefined || ctx.blob === undefined) return true;
  const key = parseSshKey(ctx.key.data);
  if (key instanceof Error) return false;
  return key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
}
