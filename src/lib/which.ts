// Finds an executable the way a shell would, so a missing Jupyter is reported up front, not as a hang.
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, isAbsolute, join } from 'node:path';

/**
 * The absolute path of `command` if it is an executable file (searched on `path` unless it contains a slash).
 *
 * @example
 * findExecutable('/usr/bin/jupyter-notebook'); // '/usr/bin/jupyter-notebook' | undefined
 */
export function findExecutable(command: string, path = process.env.PATH ?? ''): string | undefined {
  const candidates = command.includes('/') ? [command] : path.split(delimiter).filter(Boolean).map((dir) => join(dir, command));
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) continue;
      accessSync(candidate, constants.X_OK);
      return isAbsolute(candidate) ? candidate : join(process.cwd(), candidate);
    } catch {
      // not here
    }
  }
  return undefined;
}
