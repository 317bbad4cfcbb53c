// Machines joining the pool on their own (provider `static`): one-use, expiring join tokens issued to an admin
// (`dspool instances join-command`), exchanged once by `dspool agent join` for a long-lived host credential, which
// the machine then trades for an instance whenever it (re)joins. Tokens and credentials are kept hashed, in the
// store: a join command printed before a hub restart still works after it, once, until it expires.
import type { Logger } from '../../lib/log.js';
import { JoinErrorCode, joinRequestSchema, type JoinResponse } from '../../protocol/agent.js';
import type { InstanceSpec, Provider } from '../../providers/provider.js';
import { hashSecret, newSecret } from '../auth/credentials.js';
import { sameSecret } from '../../lib/secret.js';
import type { EventLog } from '../events.js';
import type { Store } from '../store/types.js';

/** Store key of the host credentials' hashes, by host address. */
const HOSTS_SETTING = 'join.hosts';

/** What the join service needs from the hub. */
export interface JoinContext {
  readonly provider: Pick<Provider, 'type' | 'claim'>;
  readonly store: Pick<Store, 'getSetting' | 'putSetting' | 'listUsers' | 'createJoinToken' | 'takeJoinToken' | 'deleteExpiredJoinTokens'>;
  readonly events: Pick<EventLog, 'record'>;
  readonly log: Logger;
}

/** A join's answer: an HTTP status and its JSON body. */
export interface JoinReply {
  readonly status: number;
  readonly body: JoinResponse | { code: string; message: string };
}

/**
 * Issues join tokens and answers `POST /hub/internal/join`.
 *
 * @example
 * const { token } = await joins.issue(3_600_000);
 * const reply = await joins.join({ token }, '10.0.0.5'); // { status: 200, body: { instanceId, hostCredential, … } }
 */
export class JoinService {
  constructor(private readonly ctx: JoinContext) {}

  /** A new one-use join token valid for `ttlMs`; the store keeps its hash, so it outlives a hub restart. */
  async issue(ttlMs: number): Promise<{ token: string; expiresAt: string }> {
    const now = Date.now();
    await this.ctx.store.deleteExpiredJoinTokens(new Date(now).toISOString());
    const token = `dspj_${newSecret()}`;
    const expiresAt = new Date(now + ttlMs).toISOString();
    await this.ctx.store.createJoinToken({ hash: hashSecret(token), created: new Date(now).toISOString(), expiresAt });
    return { token, expiresAt };
  }

  /** Handles one join from `remote` (the machine's address as this hub sees it). Never throws. */
  async join(raw: unknown, remote: string): Promise<JoinReply> {
    const host = remote.replace(/^::ffff:/, '');
    const refuse = (status: number, code: string, message: string): JoinReply => {
      this.ctx.events.record('instance.join_refused', `a machine at ${host} could not join: ${message}`, { data: { host, code } });
      this.ctx.log.warn({ host, code }, 'join refused');
      return { status, body: { code, message } };
    };
    const parsed = joinRequestSchema.safeParse(raw);
    if (!parsed.success) return refuse(400, JoinErrorCode.badRequest, 'send {"token": …} or {"hostCredential": …}');
    if (!this.ctx.provider.claim) {
      return refuse(400, JoinErrorCode.notSupported, `provider ${this.ctx.provider.type} makes its own instances; machines join only with provider: { type: static }`);
    }
    const hosts = ((await this.ctx.store.getSetting(HOSTS_SETTING)) ?? {}) as Record<string, string>;
    let hostCredential: string | undefined;
    if ('token' in parsed.data) {
      // One use: gone from the store whatever happens next.
      const taken = await this.ctx.store.takeJoinToken(hashSecret(parsed.data.token));
      if (taken === undefined || Date.parse(taken.expiresAt) <= Date.now()) {
        return refuse(401, JoinErrorCode.tokenInvalid, 'the join token is wrong, already used or expired; print a new one with: dspool instances join-command');
      }
      hostCredential = `dsph_${newSecret()}`;
      hosts[host] = hashSecret(hostCredential);
      await this.ctx.store.putSetting(HOSTS_SETTING, hosts);
    } else {
      const known = hosts[host];
      if (!known || !sameSecret(known, hashSecret(parsed.data.hostCredential))) {
        return refuse(401, JoinErrorCode.hostCredentialInvalid, `this machine's credential is not the one issued to ${host}; join it again with a new token (dspool instances join-command)`);
      }
    }
    try {
      const claimed = await this.ctx.provider.claim(host);
      const knownUsers = (await this.ctx.store.listUsers()).map((u) => ({ name: u.name, uid: u.uid, gid: u.gid }));
      const settings: InstanceSpec['settings'] = { ...claimed.settings, knownUsers };
      this.ctx.events.record('instance.joined', `the machine at ${host} joined as ${claimed.id}`, { instanceId: claimed.id, data: { host } });
      return {
        status: 200,
        body: { ...(hostCredential ? { hostCredential } : {}), instanceId: claimed.id, instanceToken: claimed.joinToken, address: claimed.address, settings },
      };
    } catch (error) {
      const code = (error as { code?: string }).code ?? 'internal';
      return refuse(code === JoinErrorCode.hostNotListed ? 403 : 409, code, (error as Error).message);
    }
  }
}
