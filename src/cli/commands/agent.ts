// `dspool agent join <hub-url> --token <t>` and `dspool agent run`: make this machine an instance of a pool
// (provider `static`) and keep it one. Run as root (it creates the pool's accounts); systemd runs `agent run`.
import type { Command } from 'commander';
import { JoinedMachine, readHostCredential } from '../../agent/join.js';
import { JoinRefusedError } from '../../agent/errors.js';
import { createLogger } from '../../lib/log.js';
import { normalizeFingerprint } from '../../lib/tls.js';
import { OperationError, UsageError } from '../errors.js';

async function runMachine(machine: JoinedMachine): Promise<void> {
  let signalled = false;
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      signalled = true;
      void machine.close();
    });
  }
  machine.start();
  try {
    await machine.done;
  } catch (error) {
    if (error instanceof JoinRefusedError) throw new OperationError(`the hub refused this machine (${error.code}): ${error.message}`);
    throw error;
  }
  if (signalled) await machine.close();
}

interface AgentFlags {
  stateDir?: string;
  scratchDir?: string;
  logLevel: string;
}

/**
 * Adds `dspool agent` and its subcommands, which run this machine as an instance of a pool (provider static).
 *
 * @example
 * registerAgentCommands(program); // adds `dspool agent join` and `dspool agent run`
 */
export function registerAgentCommands(program: Command): void {
  const agent = program.command('agent').description('run this machine as an instance of a pool (provider static)');
  agent
    .command('join')
    .description('join the pool at <hub-url> with a one-use token from "dspool instances join-command", then run its agent')
    .argument('<hub-url>', 'the hub\'s agent URL, as printed by join-command')
    .requiredOption('--token <token>', 'one-use join token (exchanged at once for a credential kept in --state-dir)')
    .option('--hub-fingerprint <sha256>', 'the hub\'s TLS certificate fingerprint, as printed by join-command (needed for an https hub URL)')
    .option('--state-dir <dir>', 'root-only directory for this machine\'s credential', '/var/lib/dspool-agent')
    .option('--scratch-dir <dir>', 'local disk for instances (default: <state-dir>/i; keep it short, kernels\' sockets live below it)')
    .option('--log-level <level>', 'agent log level', 'info')
    .action(async (hubUrl: string, opts: AgentFlags & { token: string; hubFingerprint?: string }) => {
      if (!/^https?:\/\//.test(hubUrl)) throw new UsageError(`hub-url: "${hubUrl}" is not an http(s) URL`);
      const hubFingerprint = opts.hubFingerprint === undefined ? undefined : normalizeFingerprint(opts.hubFingerprint);
      if (opts.hubFingerprint !== undefined && hubFingerprint === undefined) {
        throw new UsageError(`--hub-fingerprint: "${opts.hubFingerprint}" is not a SHA-256 fingerprint (sha256: and 64 hex digits, as join-command prints it)`);
      }
      if (hubUrl.startsWith('https:') && hubFingerprint === undefined) {
        throw new UsageError('--hub-fingerprint is required with an https hub URL: copy the whole command "dspool instances join-command" printed');
      }
      await runMachine(new JoinedMachine({
        hubUrl, token: opts.token, ...(hubFingerprint ? { hubFingerprint } : {}), ...(opts.stateDir ? { stateDir: opts.stateDir } : {}), ...(opts.scratchDir ? { scratchDir: opts.scratchDir } : {}),
        log: createLogger('agent', opts.logLevel),
      }));
    });
  agent
    .command('run')
    .description('run this machine\'s agent with the credential "dspool agent join" saved (what the systemd unit runs)')
    .option('--state-dir <dir>', 'root-only directory holding this machine\'s credential', '/var/lib/dspool-agent')
    .option('--scratch-dir <dir>', 'local disk for instances (default: <state-dir>/i; keep it short, kernels\' sockets live below it)')
    .option('--log-level <level>', 'agent log level', 'info')
    .action(async (opts: AgentFlags) => {
      const stateDir = opts.stateDir ?? '/var/lib/dspool-agent';
      const saved = readHostCredential(stateDir);
      if (!saved) throw new OperationError(`this machine has not joined a pool (no credential in ${stateDir}); run: dspool agent join <hub-url> --token <token>`);
      await runMachine(new JoinedMachine({
        hubUrl: saved.hubUrl, stateDir, ...(opts.scratchDir ? { scratchDir: opts.scratchDir } : {}), log: createLogger('agent', opts.logLevel),
      }));
    });
}
