// Runs Slurm's own commands (sbatch, squeue, scancel) with a bounded time, and tells "the controller did not
// answer" apart from "Slurm said no".
import { spawn } from 'node:child_process';
import { SlurmCommandError, SlurmUnavailableError } from './errors.js';

/** What one Slurm command printed. */
export interface SlurmRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** How to run the Slurm commands. */
export interface SlurmCommandContext {
  /** Environment of every command (`SLURM_CONF` where pool.yaml names one). */
  readonly env: NodeJS.ProcessEnv;
  /** Longest a command may take before it counts as "the controller did not answer", in ms. */
  readonly timeoutMs: number;
}

/** What Slurm's client tools print when they cannot reach the controller (22.05 through 24.x wording). */
const UNREACHABLE = /Unable to contact slurm controller|Socket timed out|Zero Bytes were transmitted|Connection refused|Communication connection failure|temporarily unable/i;

/**
 * Runs `command args` with `input` on stdin. Resolves with what it printed; rejects with `SlurmUnavailableError`
 * when the controller did not answer (in its words or by timing out) and `SlurmCommandError` when the command
 * cannot be run at all. A plain refusal (exit 1 with a reason) resolves: the caller decides what it means.
 *
 * @example
 * const { stdout } = await runSlurm(ctx, 'squeue', ['-h', '-o', '%i|%T']);
 */
export function runSlurm(ctx: SlurmCommandContext, command: string, args: readonly string[], input = ''): Promise<SlurmRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { env: ctx.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, ctx.timeoutMs);
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new SlurmCommandError(command, (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'not installed (not found on PATH)' : error.message));
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (timedOut) return reject(new SlurmUnavailableError(command, `no answer within ${Math.round(ctx.timeoutMs / 1000)} s`));
      if (code !== 0 && UNREACHABLE.test(stderr)) return reject(new SlurmUnavailableError(command, lastError(stderr)));
      resolve({ code, stdout, stderr });
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(input);
  });
}

/**
 * The most telling line of a Slurm command's stderr: the last `error:` line without its prefix.
 *
 * @example
 * lastError('sbatch: error: invalid partition specified: x\nsbatch: error: Batch job submission failed: Invalid partition name specified\n');
 * // 'Batch job submission failed: Invalid partition name specified'
 */
export function lastError(stderr: string): string {
  const lines = stderr.split('\n').map((line) => line.trim()).filter(Boolean);
  const errors = lines.filter((line) => /error:/i.test(line));
  const line = errors[errors.length - 1] ?? lines[lines.length - 1] ?? 'no reason given';
  return line.replace(/^[a-z]+: error:\s*/i, '').slice(0, 300);
}
