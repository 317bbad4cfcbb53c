// How CLI commands reach a running pool: the hub URL from dataDir/runtime.json and the admin token the hub
// wrote beside it (mode 0600). Commands never open the store behind the hub's back.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { LoadedConfig } from '../config/index.js';
import { ADMIN_TOKEN_FILE, readRuntime } from '../hub/runtime.js';
import { OperationError, UsageError } from './errors.js';

/** A JSON response from the hub. */
export interface HubResponse<T> {
  readonly status: number;
  readonly body: T;
}

/**
 * The CLI's client of a running hub on this machine: its URL from `runtime.json`, the admin token from `secrets/admin-token`.
 *
 * @example
 * const hub = HubClient.forConfig(resolveConfig(opts.config));
 * const { body } = await hub.json<InstanceJson[]>('GET', '/hub/api/instances');
 */
export class HubClient {
  private constructor(readonly url: string, private readonly token: string) {}

  /**
   * Connects to the hub serving `config`, or throws `OperationError` saying no pool is running.
   *
   * @example
   * const hub = HubClient.forConfig(config);
   * const users = await hub.json('GET', '/hub/api/users');
   */
  static forConfig(config: LoadedConfig): HubClient {
    const runtime = readRuntime(config.dataDir);
    let token = '';
    try {
      token = readFileSync(join(config.dataDir, ADMIN_TOKEN_FILE), 'utf8').trim();
    } catch {
      // reported below
    }
    if (!runtime || !token) {
      throw new OperationError(`no pool is running for ${config.configFile} (start it with: dspool up --config ${config.configFile})`);
    }
    return new HubClient(runtime.hub_url, token);
  }

  /** Sends a request; API errors become `OperationError` with the hub's message (`UsageError` for a 400). */
  async json<T>(method: string, path: string, body?: unknown): Promise<HubResponse<T>> {
    let response: Response;
    try {
      response = await fetch(`${this.url}${path}`, {
        method,
        headers: { authorization: `token ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (cause) {
      throw new OperationError(`cannot reach the hub at ${this.url}: is the pool running? (${(cause as Error).message})`, undefined, { cause });
    }
    const text = await response.text();
    let parsed: unknown = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = text;
      }
    }
    if (!response.ok) {
      const message = (parsed as { message?: string } | null)?.message ?? `HTTP ${response.status}`;
      // The hub refused the input itself (a weak password, a system account's name): bad usage, exit 2.
      if (response.status === 400) throw new UsageError(message);
      throw new OperationError(message, response.status);
    }
    return { status: response.status, body: parsed as T };
  }
}
