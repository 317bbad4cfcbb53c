// `dspool users add | list | rm | passwd | disable` and `dspool token`: user management through the running hub's API.
import type { Command } from 'commander';
import { checkName, promptHidden, readStdin } from '../args.js';
import { HubClient } from '../client.js';
import { resolveConfig } from '../config.js';
import { OperationError, UsageError } from '../errors.js';
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
  const password = (await readStdin()).split(/\r?\n/)[0] ?? '';
  if (!password) throw new UsageError('--password-stdin: standard input held no password');
  return password;
}

/** A 404 from the hub for this user, said plainly. */
function noSuchUser(name: string, error: unknown): never {
  if (error instanceof OperationError && error.status === 404) throw new OperationError(`no user named "${name}"`, 404);
  throw error;
}

/**
 * Adds `dspool users`, which manages pool users; returns it so other commands can add subcommands to it.
 *
 * @example
 * const users = registerUserCommands(program); // `dspool users add|rm|passwd|list|disable|token …`
 * registerSshCommands(program, users); // more subcommands go under it
 */
export function registerUserCommands(program: Command): Command {
  const users = program.command('users').description('manage pool users');

  users
    .command('add <name>')
    .description('add a user (lowercase Unix-style name) with a password read from stdin, or --no-password')
    .option('--admin', 'make the user an admin', false)
    .option('--password-stdin', 'read the password from standard input (first line)', false)
    .option('--no-password', 'add the user without a password (they log in with SSH keys or API tokens only)')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .option('--json', 'print the created user as JSON', false)
    .action(async (name: string, opts: { admin: boolean; passwordStdin: boolean; password: boolean; config?: string; json: boolean }) => {
      checkName(name);
      if (opts.passwordStdin && !opts.password) throw new UsageError('--password-stdin and --no-password contradict each other: give one');
      if (!opts.passwordStdin && opts.password) {
        throw new UsageError(
          `a password is needed to log in on the web page: give it on standard input with --password-stdin (echo "$PW" | dspool users add ${name} --password-stdin), or add --no-password for a user who logs in with SSH keys or API tokens only`,
        );
      }
      const config = resolveConfig(opts.config);
      const password = opts.passwordStdin ? await readPasswordStdin() : undefined;
      const hub = HubClient.forConfig(config);
      const { body } = await hub.json<UserJson>('POST', `/hub/api/users/${name}`, { admin: opts.admin, ...(password ? { password } : {}) });
      if (opts.json) printJson(body);
      else process.stdout.write(`added user ${body.name} (uid ${body.uid}${body.admin ? ', admin' : ''}${password ? '' : ', no password'})\n`);
    });

  users
    .command('rm <name>')
    .description('delete a user: their server is stopped, their tokens, keys and login go; their notebooks stay on the share')
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .action(async (name: string, opts: { config?: string }) => {
      checkName(name);
      const config = resolveConfig(opts.config);
      const hub = HubClient.forConfig(config);
      await hub.json('DELETE', `/hub/api/users/${name}`).catch((error: unknown) => noSuchUser(name, error));
      process.stdout.write(`removed user ${name} (their files stay on the share in ${config.share.path}/users/${name})\n`);
    });

  users
    .command('passwd <name>')
    .description('set a user\'s password: read from stdin with --password-stdin, else asked twice on the terminal')
    .option('--password-stdin', 'read the password from standard input (first line)', false)
    .option('--config <file>', 'pool.yaml (default: $DSPOOL_CONFIG or ./pool.yaml)')
    .action(async (name: string, opts: { passwordStdin: boolean; config?: string }) => {
      checkName(name);
      const hub = HubClient.forConfig(resolveConfig(opts.config));
      let password: string;
      if (opts.passwordStdin) password = await readPasswordStdin();
      else if (process.stdin.isTTY) {
        password = await promptHidden(`New password for ${name}: `);
        if ((await promptHidden('Again: ')) !== password) throw new UsageError('the two passwords differ; nothing was changed');
        if (!password) throw new UsageError('the password is empty; nothing was changed');
      } else throw new UsageError(`give the password on standard input with --password-stdin (echo "$PW" | dspool users passwd ${name} --password-stdin)`);
      await hub.json('PATCH', `/hub/api/users/${name}`, { password }).catch((error: unknown) => noSuchUser(name, error));
      process.stdout.write(`password of ${name} changed\n`);
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
