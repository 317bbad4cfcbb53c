// Checks the CLI applies to arguments before anything is contacted.
import { usernameProblem } from '../lib/names.js';
import { UsageError } from './errors.js';

/**
 * The username, or a `UsageError` (exit 2) saying why it is refused; it is never rewritten.
 *
 * @example
 * checkName('alice'); // 'alice'
 */
export function checkName(name: string): string {
  const problem = usernameProblem(name);
  if (problem) throw new UsageError(`invalid username "${name}": ${problem}`);
  return name;
}

/**
 * All of standard input as text (for passwords and keys, which never go on the command line).
 *
 * @example
 * // echo 'correct horse' | dspool users passwd alice --password-stdin
 * const password = (await readStdin()).split(/\r?\n/)[0] ?? ''; // 'correct horse'
 */
export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Asks for a secret on the terminal without echoing it (for `users passwd` typed by hand); the prompt goes to stderr.
 *
 * @example
 * const password = await promptHidden('New password: ');
 */
export async function promptHidden(question: string): Promise<string> {
  const { createInterface } = await import('node:readline');
  const { Writable } = await import('node:stream');
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _encoding, done) {
      if (!muted) process.stderr.write(chunk);
      done();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    return await new Promise<string>((resolve) => {
      rl.question(question, (answer) => resolve(answer));
      muted = true;
    });
  } finally {
    rl.close();
    process.stderr.write('\n');
  }
}
