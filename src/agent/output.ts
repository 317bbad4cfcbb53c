// A server's output, line by line, with secrets redacted before anything is logged, kept or returned.

/**
 * Replaces every occurrence of each secret in `text` with `[redacted]`.
 *
 * @example
 * redact('token=s3cr3t in url ?t=s3cr3t', ['s3cr3t']); // 'token=[redacted] in url ?t=[redacted]'
 */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) if (secret.length > 0) out = out.split(secret).join('[redacted]');
  return out;
}

/**
 * Collects a process's output into whole lines, redacts secrets from each line, hands it to `onLine` and keeps
 * the last `maxLines` for error messages. Lines are only cut at newlines, so a secret split across two chunks
 * is still redacted.
 *
 * @example
 * const tail = new OutputTail([token], 20, (line) => log.debug(line));
 * child.stdout.on('data', (chunk) => tail.push(chunk));
 * tail.text(); // last lines, token replaced with [redacted]
 */
export class OutputTail {
  private partial = '';
  private readonly lines: string[] = [];

  constructor(
    private readonly secrets: readonly string[],
    private readonly maxLines: number,
    private readonly onLine: (line: string) => void = () => {},
  ) {}

  push(chunk: Buffer | string): void {
    const parts = (this.partial + chunk.toString()).split('\n');
    this.partial = parts.pop() ?? '';
    // A runaway line without newline is cut so memory stays bounded.
    if (this.partial.length > 64 * 1024) {
      parts.push(this.partial);
      this.partial = '';
    }
    for (const part of parts) this.add(part);
  }

  /** Flushes a last line that had no newline. */
  end(): void {
    if (this.partial !== '') this.add(this.partial);
    this.partial = '';
  }

  /** The last lines, redacted, joined with newlines. */
  text(): string {
    return this.lines.join('\n');
  }

  private add(raw: string): void {
    const line = redact(raw.replace(/\r$/, ''), this.secrets);
    this.onLine(line);
    this.lines.push(line);
    if (this.lines.length > this.maxLines) this.lines.shift();
  }
}
