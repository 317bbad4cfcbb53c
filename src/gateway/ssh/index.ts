// The gateway's SSH front door: one address for every pool user's terminals, scp/sftp and VS Code Remote-SSH.
/**
 * The SSH front door. Users log in as their pool user with a registered key or their password; the front door
 * asks a `SessionLocator` for their instance (progress in the auth banner while a session starts), then relays
 * every channel to that instance's SSH server with the pool-internal key. Credentials never leave the gateway.
 * When the pool stopped the user's server (idle, a drain deadline) the locator answers `SshHeld`: the login is
 * accepted with no instance, and only a channel that asks for a terminal starts the server again.
 *
 * @example
 * import { startSshFrontDoor } from './ssh/index.js';
 * const door = await startSshFrontDoor({
 *   port: 2222,
 *   hostKeyFile: '/var/lib/dspool/secrets/ssh_host_ed25519_key',
 *   internalKey: internalPrivateKey,
 *   authenticator,   // SshAuthenticator: checkPassword / checkPublicKey → 'allowed' | 'denied' | 'unknown'
 *   locator,         // SessionLocator: locate(user, onProgress, signal) → { host, port, hostKey? }
 * });
 * // … await door.close();
 */
export { startSshFrontDoor, type SshFrontDoor, type SshFrontDoorState, type SshConnectionState } from './front-door.js';
export {
  sshFrontDoorDefaults,
  type AuthVerdict,
  type PasswordVerdict,
  type ResolvedSshFrontDoorOptions,
  type LocateOptions,
  type SessionLocator,
  type SshAuthenticator,
  type SshFrontDoorOptions,
  type SshHeld,
  type SshRateLimit,
  type SshTarget,
} from './options.js';
export { loadOrCreateHostKey, type HostKey } from './host-key.js';
export { SshHostKeyError, SshListenError, SshServerHeldError, SshSessionUnavailableError } from './errors.js';
export { hubSshClient, type HubSshClientOptions } from './hub-client.js';
