// The SSH front door's view of the hub: checks credentials and locates sessions through the hub's internal
// routes, authenticated with the gateway secret. Nothing about a user's credential is kept here.
import {
  SSH_AUTH_PATH, SSH_LOCATE_PATH, locateLineSchema, sshAuthResult, type SshAuthBody,
} from '../../protocol/gateway.js';
import { SshSessionUnavailableError } from './errors.js';
import type { AuthVerdict, PasswordVerdict, SessionLocator, SshAuthenticator, SshHeld, SshTarget } from './options.js';

/** Where the hub is and how to prove we are the gateway. */
export interface HubSshClientOptions {
  /** Current hub URL (a function: the hub may be restarted). */
  readonly hubUrl: () => string;
  readonly secret: string;
}

/**
 * An authenticator and a locator for `startSshFrontDoor`, backed by the hub.
 *
 * @example
 * const { authenticator, locator } = hubSshClient({ hubUrl: () => hub.url, secret });
 * await startSshFrontDoor({ authenticator, locator, internalKey, hostKeyFile });
 */
export function hubSshClient(options: HubSshClientOptions): { authenticator: SshAuthenticator; locator: SessionLocator } {
  const post = (path: string, body: unknown, signal?: AbortSignal) =>
    fetch(`${options.hubUrl()}${path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${options.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });

  const check = async (body: SshAuthBody): Promise<PasswordVerdict> => {
    const response = await post(SSH_AUTH_PATH, body);
    if (!response.ok) throw new Error(`hub answered ${response.status} to a credential check`);
    const { verdict, retryAfterMs } = sshAuthResult.parse(await response.json());
    return verdict === 'limited' ? { retryAfterMs: retryAfterMs ?? 0 } : verdict;
  };

  const authenticator: SshAuthenticator = {
    checkPassword: (user, password, address) => check({ method: 'password', user, password, address }),
    async checkPublicKey(user, algo, keyData): Promise<AuthVerdict> {
      const verdict = await check({ method: 'publickey', user, algo, key: keyData.toString('base64') });
      if (typeof verdict !== 'string' || verdict === 'busy') throw new Error('hub answered a key check with a login limit');
      return verdict;
    },
  };

  const locator: SessionLocator = {
    async locate(user, onProgress, signal, options = {}): Promise<SshTarget | SshHeld> {
      let response: Response;
      try {
        response = await post(SSH_LOCATE_PATH, { user, ...(options.interactive === undefined ? {} : { interactive: options.interactive }) }, signal);
      } catch (error) {
        throw new SshSessionUnavailableError(`the pool's hub cannot be reached right now (${(error as Error).message})`, user);
      }
      if (!response.ok || !response.body) throw new SshSessionUnavailableError(`the hub refused the session (HTTP ${response.status})`, user);
      const decoder = new TextDecoder();
      let buffered = '';
      for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
        buffered += decoder.decode(chunk, { stream: true });
        let newline: number;
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const line = locateLineSchema.parse(JSON.parse(buffered.slice(0, newline)));
          buffered = buffered.slice(newline + 1);
          if ('progress' in line) onProgress(line.progress);
          else if ('error' in line) throw new SshSessionUnavailableError(line.error, user);
          else if ('held' in line) return { held: line.held };
          else return line.target;
        }
      }
      throw new SshSessionUnavailableError('the hub ended the session lookup without an answer', user);
    },
  };
  return { authenticator, locator };
}
