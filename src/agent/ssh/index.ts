// Instance-side SSH: the server the gateway's front door relays every user connection to.
/**
 * The instance-side SSH server. It accepts only the pool-internal key (the gateway's), runs each session as
 * the pool user's account (login shell with a pty, `<shell> -c` exec, the real `sftp-server`), allows port
 * forwards to this instance only, and ends a session's processes when it closes.
 *
 * @example
 * import { startInstanceSshServer } from './ssh/index.js';
 * const ssh = await startInstanceSshServer({
 *   host: settings.address,
 *   internalPublicKey: settings.ssh.internalPublicKey,
 *   resolveUser: (name) => accounts.sshUser(name), // { uid, gid, home, shell, env } or undefined
 * });
 * // hello.sshPort = ssh.port; … on shutdown: await ssh.close();
 */
export { startInstanceSshServer, type InstanceSshServer, type InstanceSshState } from './server.js';
export { instanceSshDefaults, type InstanceSshOptions, type ResolvedInstanceSshOptions, type ResolveUser } from './options.js';
export { DEFAULT_ACCEPT_ENV, DEFAULT_USER_PATH, envAccepted, sessionEnv, type SshUser } from './env.js';
export type { SshSessionInfo } from './session.js';
export { InstanceSshKeyError, InstanceSshListenError } from './errors.js';
