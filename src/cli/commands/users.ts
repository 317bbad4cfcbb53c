// `dspool users add | list` and `dspool token`: user management through the running hub's API.
import type { Command } from 'commander';
import { checkName, readStdin } from '../args.js';
import { HubClient } from '../client.js';
import { resolveConfig } from '../config.js';
import { UsageError } from '../errors.js';
import { printJson, printTable } from '../output.js';

interface UserJson {
  name: string;
  admin: boolean;
  uid: number;
  server: string | null;
  pending: string | null;
  servers: Record<string, { instance: string | null; ready: boolean }>;
}

async function readPasswordStdin(): Promise<string> {
  if (process.stdin.isTTY) throw new UsageError('--password-stdin expects the password on standard input (e.g. echo "$PW" | dspool users add …)');
  return readStdin();
}

export function registerUserCommands(program: Command): Command {
  const users = program.command('users').description('manage pool users');

  users
    .command('add <name>')
    .description('add a user (lowercase Unix-style name); the password, if any, is read from stdin')
    .option('--admin', 'make the user an admin', false)
    .option('--password-stdin', 'read the password from standard input (first line)', false)
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print the created user as JSON', false)
    .action(async (name: string, opts: { admin: boolean; passwordStdin: boolean; config?: string; json: boolean }) => {
      checkName(name);
      const config = resolveConfig(opts.config);
      let password: string | undefined;
      if (opts.passwordStdin) {
        password = (await readPasswordStdin()).split(/\r?\n/)[0] ?? '';
        if (!password) throw new UsageError('--password-stdin: standard input held no password');
      }
      const hub = HubClient.forConfig(config);
      const { body } = await hub.json<UserJson>('POST', `/hub/api/users/${name}`, { admin: opts.admin, ...(password ? { password } : {}) });
      if (opts.json) printJson(body);
      else process.stdout.write(`added user ${body.name} (uid ${body.uid}${body.admin ? ', admin' : ''})\n`);
    });

  users
    .command('list')
    .description('list users and where their servers run')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print JSON', false)
    .action(async (opts: { config?: string; json: boolean }) => {
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      const { body } = await hub.json<UserJson[]>('GET', '/hub/api/users');
      if (opts.json) return printJson(body);
      printTable(
        ['NAME', 'ADMIN', 'UID', 'SERVER', 'INSTANCE'],
        body.map((u) => {
          const server = u.servers[''];
          return [u.name, u.admin ? 'yes' : '', String(u.uid), server ? (server.ready ? 'running' : (u.pending ?? 'starting')) : '', server?.instance ?? ''];
        }),
      );
    });

  users
    .command('disable <name>')
    .description('lock a user out: no login, tokens or SSH, and their server is stopped (--enable lets them back in)')
    .option('--enable', 'lift the lock instead', false)
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print the user as JSON', false)
    .action(async (name: string, opts: { enable: boolean; config?: string; json: boolean }) => {
      checkName(name);
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      const { body } = await hub.json<UserJson & { disabled: boolean }>('PATCH', `/hub/api/users/${name}`, { disabled: !opts.enable });
      if (opts.json) printJson(body);
      else process.stdout.write(`${body.name} is ${body.disabled ? 'disabled' : 'enabled'}\n`);
    });

  program
    .command('token <name>')
    .description('create a new API token for a user and print it (shown once)')
    .option('--note <text>', 'what the token is for', 'created with dspool token')
    .option('--expires-in <seconds>', 'lifetime in seconds (default: never expires)')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print the token model as JSON', false)
    .action(async (name: string, opts: { note: string; expiresIn?: string; config?: string; json: boolean }) => {
      checkName(name);
      let expires: number | undefined;
      if (opts.expiresIn !== undefined) {
        expires = Number(opts.expiresIn);
        if (!Number.isInteger(expires) || expires <= 0) throw new UsageError(`--expires-in: "${opts.expiresIn}" is not a positive whole number of seconds`);
      }
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      const { body } = await hub.json<{ token: string }>('POST', `/hub/api/users/${name}/tokens`, {
        note: opts.note, ...(expires ? { expires_in: expires } : {}),
      });
      if (opts.json) printJson(body);
      else process.stdout.write(`${body.token}\n`);
    });
  return users;
}
