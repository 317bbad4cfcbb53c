// Whole-file replacement for files other processes read while we write them (runtime.json, instance records,
// Jupyter's config): a reader sees the old file or the new one, never a half-written one.
import { chmodSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

/**
 * Replaces `file` with `text` at once: writes a temporary file beside it, then renames it over `file`. The file has
 * exactly `mode` (the umask does not narrow it).
 *
 * @example
 * replaceFile('/var/lib/dspool/runtime.json', JSON.stringify(info), 0o644);
 */
export function replaceFile(file: string, text: string, mode: number): void {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  try {
    writeFileSync(temp, text, { mode });
    chmodSync(temp, mode);
    renameSync(temp, file);
  } catch (error) {
    rmSync(temp, { force: true });
    throw error;
  }
}
