// `dspool ssh-config` and `dspool users keys …`: getting onto the pool with OpenSSH, VS Code Remote-SSH, scp.
import { existsSync, readFileSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { checkName, readStdin } from '../args.js';
import { readFrontDoorInfo } from '../../hub/runtime.js';
import { HubClient } from '../client.js';
import { resolveConfig } from '../config.js';
import { OperationError, UsageError } from '../errors.js';
import { note, printJson, printTable } from '../output.js';
import { blockMarkers, ensureSshDir, type FileChange, readOrEmpty, upsertConfigBlock, upsertKnownHost, writeIfChanged } from '../ssh-install.js';

interface KeyJson {
  id: string;
  algo: string;
  fingerprint: string;
  comment: string;
  key: string;
}

async function readKeyText(source: string): Promise<string> {
  if (source !== '-') {
    try {
      return readFileSync(source, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read the key file "${source}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  return readStdin();
}

/** The Host block for the pool, and the known_hosts line when the pool's host key is known. */
interface SshSetup {
  readonly block: string[];
  readonly hostKeyAlias: string;
  /** How OpenSSH names the address without the alias (`[host]:port`), for `ssh -p <port> user@host`. */
  readonly address: string;
  /** `<type> <base64>` of the pool's host key, once the pool has run. */
  readonly hostKey: string | undefined;
  readonly knownHostsLine: string | undefined;
}

function sshSetup(opts: SshConfigOptions): SshSetup {
  const config = resolveConfig(opts.config);
  if (config.gateway.sshPort === null) throw new UsageError(`SSH is off in ${config.configFile} (gateway.sshPort: null)`);
  const user = checkName(opts.user ?? userInfo().username);
  if (!/^[A-Za-z0-9._-]+$/.test(opts.host)) throw new UsageError(`--host: "${opts.host}" is not a plain alias (letters, digits, ".", "_", "-")`);
  const running = readFrontDoorInfo(config.dataDir);
  const port = running?.ssh_port ?? config.gateway.sshPort;
  const host = config.gateway.host === '0.0.0.0' || config.gateway.host === '::' ? '127.0.0.1' : config.gateway.host;
  const alias = `dspool-${host}-${port}`;
  const block = [`Host ${opts.host}`, `  HostName ${host}`, `  Port ${port}`, `  User ${user}`, `  HostKeyAlias ${alias}`, '  ServerAliveInterval 30'];
  if (opts.identityFile !== undefined) block.push(`  IdentityFile ${identityFile(opts.identityFile)}`, '  IdentitiesOnly yes');
  const key = running?.ssh_host_key?.trim();
  const hostKey = key ? key.split(/\s+/).slice(0, 2).join(' ') : undefined;
  const address = port === 22 ? host : `[${host}]:${port}`;
  return { block, hostKeyAlias: alias, address, hostKey, knownHostsLine: hostKey ? `${alias} ${hostKey}` : undefined };
}

/** The private key file, as an absolute path; a `.pub` given by mistake is taken for its private half. */
function identityFile(file: string): string {
  let path = resolve(file);
  if (path.endsWith('.pub') && existsSync(path.slice(0, -4))) path = path.slice(0, -4);
  if (!existsSync(path)) throw new UsageError(`--identity-file: "${file}" does not exist (give your private key, e.g. ~/.ssh/id_ed25519)`);
  return path;
}

interface SshConfigOptions {
  user?: string;
  host: string;
  identityFile?: string;
  install: boolean;
  config?: string;
}

/** Writes the block into ~/.ssh/config and the host key into ~/.ssh/known_hosts; reports what changed on stdout. */
function install(setup: SshSetup, alias: string): void {
  if (setup.hostKey === undefined) {
    throw new OperationError('the pool\'s SSH host key is not known yet: start the pool (dspool up) once, then run this again');
  }
  const dir = join(homedir(), '.ssh');
  ensureSshDir(dir);
  const configFile = join(dir, 'config');
  const knownFile = join(dir, 'known_hosts');
  const before = readOrEmpty(configFile);
  const { begin, end } = blockMarkers(alias);
  const outside = before.split(begin)[0] + (before.split(end)[1] ?? '');
  if (new RegExp(`^\\s*Host\\s+(.*\\s)?${alias.replace(/\./g, '\\.')}(\\s|$)`, 'mi').test(before.includes(begin) ? outside : before)) {
    note(`warning: ${configFile} already has a "Host ${alias}" section not written by dspool; OpenSSH uses the first value it finds, so remove that one`);
  }
  const config = upsertConfigBlock(before, alias, setup.block.join('\n'));
  writeIfChanged(configFile, config.text, 0o600);
  // Under the alias (for `ssh <alias>`) and the address (for `ssh -p <port> user@host`, as the README shows).
  const byAlias = upsertKnownHost(readOrEmpty(knownFile), setup.hostKeyAlias, `${setup.hostKeyAlias} ${setup.hostKey}`);
  const byAddress = upsertKnownHost(byAlias.text, setup.address, `${setup.address} ${setup.hostKey}`);
  const known = { text: byAddress.text, change: combine(byAlias.change, byAddress.change) };
  writeIfChanged(knownFile, known.text, 0o600);
  process.stdout.write(
    `${configFile}: ${config.change === 'unchanged' ? 'unchanged' : `${config.change} Host ${alias}`}\n` +
      `${knownFile}: ${known.change === 'unchanged' ? 'unchanged' : `${known.change} the pool's host key (${setup.hostKeyAlias}, ${setup.address})`}\n` +
      `then: ssh ${alias}   (also scp, sftp and VS Code Remote-SSH with host "${alias}")\n`,
  );
}

function combine(a: FileChange, b: FileChange): FileChange {
  if (a === 'unchanged') return b;
  if (b === 'unchanged') return a;
  return a === 'added' && b === 'added' ? 'added' : 'updated';
}

/**
 * Adds `dspool ssh-config` and, under `users`, `dspool users keys` for the SSH public keys users log in with.
 *
 * @example
 * const users = registerUserCommands(program);
 * registerSshCommands(program, users); // adds `dspool ssh-config` and `dspool users keys add|list|rm`
 */
export function registerSshCommands(program: Command, users: Command): void {
  program
    .command('ssh-config')
    .description('print (or, with --install, write into ~/.ssh) the settings so `ssh dspool` (and VS Code Remote-SSH) reach the pool')
    .option('--user <name>', 'pool username (default: your login name)')
    .option('--host <alias>', 'the Host alias to define', 'dspool')
    .option('--identity-file <file>', 'the private key to log in with (IdentityFile; default: OpenSSH\'s own, e.g. ~/.ssh/id_ed25519)')
    .option('--install', 'write the block into ~/.ssh/config and the pool\'s host key into ~/.ssh/known_hosts (idempotent)', false)
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .action((opts: SshConfigOptions) => {
      const setup = sshSetup(opts);
      if (opts.install) return install(setup, opts.host);
      const lines = [...setup.block];
      if (setup.knownHostsLine) {
        lines.push('# the pool\'s host key, for ~/.ssh/known_hosts (dspool ssh-config --install writes both files):');
        lines.push(`# ${setup.knownHostsLine}`);
      }
      process.stdout.write(`${lines.join('\n')}\n`);
    });

  const keys = users.command('keys').description('SSH public keys a user logs in with');
  keys
    .command('add <name> <pubkey-file>')
    .description('register a public key (a file such as ~/.ssh/id_ed25519.pub, or - for stdin)')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print the key as JSON', false)
    .action(async (name: string, file: string, opts: { config?: string; json: boolean }) => {
      checkName(name);
      const text = (await readKeyText(file)).trim();
      if (!text) throw new UsageError('the key is empty');
      if (text.includes('PRIVATE KEY')) throw new UsageError('that is a private key; give the public one (the .pub file)');
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      const { body } = await hub.json<KeyJson>('POST', `/hub/api/users/${name}/keys`, { key: text });
      if (opts.json) printJson(body);
      else process.stdout.write(`added ${body.algo} key ${body.fingerprint} for ${name}\n`);
    });
  keys
    .command('list <name>')
    .description('list a user\'s public keys')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print JSON', false)
    .action(async (name: string, opts: { config?: string; json: boolean }) => {
      checkName(name);
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      const { body } = await hub.json<KeyJson[]>('GET', `/hub/api/users/${name}/keys`);
      if (opts.json) return printJson(body);
      printTable(['ID', 'TYPE', 'FINGERPRINT', 'COMMENT'], body.map((k) => [k.id, k.algo, k.fingerprint, k.comment]));
    });
  keys
    .command('rm <name> <id>')
    .description('remove one of a user\'s public keys')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .action(async (name: string, id: string, opts: { config?: string }) => {
      checkName(name);
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      try {
        await hub.json('DELETE', `/hub/api/users/${name}/keys/${encodeURIComponent(id)}`);
      } catch (error) {
        if (error instanceof OperationError && error.status === 404) throw new OperationError(`${name} has no key "${id}"`, 404);
        throw error;
      }
      process.stdout.write(`removed key ${id} of ${name}\n`);
    });
}
