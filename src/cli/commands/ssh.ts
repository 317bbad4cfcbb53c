// `dspool ssh-config` and `dspool users keys …`: getting onto the pool with OpenSSH, VS Code Remote-SSH, scp.
import { readFileSync } from 'node:fs';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { checkName, readStdin } from '../args.js';
import { readFrontDoorInfo } from '../../hub/runtime.js';
import { HubClient } from '../client.js';
import { resolveConfig } from '../config.js';
import { OperationError, UsageError } from '../errors.js';
import { printJson, printTable } from '../output.js';

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

export function registerSshCommands(program: Command, users: Command): void {
  program
    .command('ssh-config')
    .description('print a ~/.ssh/config block so `ssh dspool` (and VS Code Remote-SSH) reach the pool')
    .option('--user <name>', 'pool username (default: your login name)')
    .option('--host <alias>', 'the Host alias to define', 'dspool')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .action((opts: { user?: string; host: string; config?: string }) => {
      const config = resolveConfig(opts.config);
      if (config.gateway.sshPort === null) throw new UsageError(`SSH is off in ${config.configFile} (gateway.sshPort: null)`);
      const user = checkName(opts.user ?? userInfo().username);
      const running = readFrontDoorInfo(config.dataDir);
      const port = running?.ssh_port ?? config.gateway.sshPort;
      const host = config.gateway.host === '0.0.0.0' || config.gateway.host === '::' ? '127.0.0.1' : config.gateway.host;
      const alias = `dspool-${host}-${port}`;
      const lines = [
        `Host ${opts.host}`,
        `  HostName ${host}`,
        `  Port ${port}`,
        `  User ${user}`,
        `  HostKeyAlias ${alias}`,
        '  ServerAliveInterval 30',
      ];
      if (running?.ssh_host_key) {
        lines.push(`# the pool's host key; add this line to ~/.ssh/known_hosts to skip the first-connection prompt:`);
        lines.push(`# ${alias} ${running.ssh_host_key.trim()}`);
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
