// The `dspool` command line: parses arguments, runs one command, maps errors to exit codes (0, 1, 2).
import { Command, CommanderError } from 'commander';
import { VERSION } from '../lib/version.js';
import { registerAgentCommands } from './commands/agent.js';
import { registerConfigCommands } from './commands/config.js';
import { registerCullCommands } from './commands/cull.js';
import { registerInstanceCommands } from './commands/instances.js';
import { registerScaleCommand } from './commands/scale.js';
import { registerSimulateCommand } from './commands/simulate.js';
import { registerStatusCommands } from './commands/status.js';
import { registerUpCommand } from './commands/up.js';
import { registerSshCommands } from './commands/ssh.js';
import { registerUserCommands } from './commands/users.js';
import { OperationError, UsageError } from './errors.js';

/**
 * Builds the command tree (exported for the reference test).
 *
 * @example
 * await buildProgram().parseAsync(['node', 'dspool', 'status', '--json']);
 */
export function buildProgram(): Command {
  const program = new Command('dspool')
    .description('a pool of identical interactive data-science machines behind one address')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  registerUpCommand(program);
  registerStatusCommands(program);
  registerScaleCommand(program);
  registerInstanceCommands(program);
  const users = registerUserCommands(program);
  registerSshCommands(program, users);
  registerCullCommands(program, users);
  registerConfigCommands(program);
  registerSimulateCommand(program);
  registerAgentCommands(program);
  const applyOverride = (command: Command) => {
    // Excess arguments are checked in the hook below, so the message can name them.
    command.exitOverride().allowExcessArguments(true);
    command.commands.forEach(applyOverride);
  };
  applyOverride(program);
  program.hook('preAction', (_root, action) => {
    const extra = action.args.slice(action.registeredArguments.length);
    if (extra.length > 0) {
      throw new UsageError(`unexpected argument${extra.length > 1 ? 's' : ''} for "${action.name()}": ${extra.join(' ')}`);
    }
  });
  return program;
}

/**
 * Runs the CLI; resolves with the process exit code.
 *
 * @example
 * process.exitCode = await main(process.argv);
 */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync([...argv]);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help') return 0;
      return 2;
    }
    if (error instanceof UsageError) {
      process.stderr.write(`dspool: ${error.message}\n`);
      return 2;
    }
    if (error instanceof OperationError) {
      process.stderr.write(`dspool: ${error.message}\n`);
      return 1;
    }
    process.stderr.write(`dspool: unexpected error: ${(error as Error).stack ?? String(error)}\n`);
    return 1;
  }
}
