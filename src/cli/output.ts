// Printing for commands: exactly one JSON document on stdout with --json, aligned tables otherwise.

/**
 * Prints one JSON document on stdout.
 *
 * @example
 * printJson({ ready: 2 }); // writes '{\n  "ready": 2\n}\n' to stdout
 */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/**
 * Prints rows as an aligned table on stdout.
 *
 * @example
 * printTable(['NAME', 'ADMIN'], [['alice', 'yes']]);
 */
export function printTable(header: readonly string[], rows: ReadonlyArray<readonly string[]>): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  process.stdout.write(`${[line(header), ...rows.map(line)].join('\n')}\n`);
}

/**
 * Progress and warnings go to stderr so stdout stays parseable.
 *
 * @example
 * note('waiting for 2 instances…'); // on stderr, so `dspool … --json | jq` still works
 */
export function note(message: string): void {
  process.stderr.write(`${message}\n`);
}
