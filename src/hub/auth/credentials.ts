// Secrets at rest: argon2id for passwords, SHA-256 for high-entropy random tokens (looked up on every request).
import argon2 from 'argon2';
import { createHash, randomBytes } from 'node:crypto';

/**
 * Hashes a password with argon2id.
 *
 * @example
 * const hash = await hashPassword('correct horse');
 */
export function hashPassword(password: string): Promise<string> {
  return argon2.hash(password, { type: argon2.argon2id });
}

/**
 * True when `password` matches `hash`; false for a malformed hash rather than throwing.
 *
 * @example
 * await verifyPassword(user.passwordHash, 'correct horse'); // true when it matches; false for a wrong password or a malformed hash
 */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2.verify(hash, password);
  } catch {
    return false;
  }
}

/**
 * A new random secret (256 bits, base64url).
 *
 * @example
 * newSecret(); // 'q3Jf…' (43 characters)
 */
export function newSecret(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/**
 * The stored form of a token or cookie: its SHA-256, hex. Tokens are random, so no salt or slow hash is needed.
 *
 * @example
 * hashSecret('abc'); // 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'
 */
export function hashSecret(secret: string): string {
  return createHash('sha256').update(secret).digest('hex');
}

