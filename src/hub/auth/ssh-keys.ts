// Registering a user's SSH public key: one path for the API and the home page.
import { fingerprint, parseSshKey } from '../../ssh/keys.js';
import { BadRequestError, HubError } from '../errors.js';
import type { EventLog } from '../events.js';
import { SshKeyExistsError } from '../store/errors.js';
import type { SshKeyRecord, Store } from '../store/types.js';
import { newSecret } from './credentials.js';

/**
 * Parses an OpenSSH public key line and stores it for `user`. Throws `BadRequestError` (field `key`) for anything
 * that is not a public key, and a 409 `HubError` when the user already has it.
 *
 * @example
 * await registerSshKey({ store, events }, 'alice', 'ssh-ed25519 AAAA… alice@laptop');
 */
export async function registerSshKey(ctx: { store: Store; events: EventLog }, user: string, text: string): Promise<SshKeyRecord> {
  const line = text.trim();
  const parsed = parseSshKey(line);
  if (parsed instanceof Error || parsed.isPrivateKey()) {
    throw new BadRequestError('key: not an OpenSSH public key line (expected e.g. "ssh-ed25519 AAAA… you@laptop")', 'key');
  }
  const record: SshKeyRecord = {
    id: `k${newSecret(6).replace(/[^A-Za-z0-9]/g, 'x')}`, user, algo: parsed.type,
    data: parsed.getPublicSSH().toString('base64'), comment: parsed.comment || line.split(/\s+/).slice(2).join(' '),
    fingerprint: fingerprint(parsed), created: new Date().toISOString(),
  };
  try {
    await ctx.store.addSshKey(record);
  } catch (error) {
    if (error instanceof SshKeyExistsError) throw new HubError('conflict', error.message, 'key');
    throw error;
  }
  ctx.events.record('user.key_added', `${user} registered SSH key ${record.fingerprint}`, { user, data: { fingerprint: record.fingerprint } });
  return record;
}
