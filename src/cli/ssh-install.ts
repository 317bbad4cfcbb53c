// `dspool ssh-config --install`: puts the pool's Host block into ~/.ssh/config and its host key into
// ~/.ssh/known_hosts, idempotently (a second run changes nothing; a changed key replaces the old line).
import { createHmac } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { replaceFile } from '../lib/atomic-file.js';

/** What happened to a file. */
export type FileChange = 'added' | 'updated' | 'unchanged';

/**
 * The markers around the block dspool manages in ~/.ssh/config, for one Host alias.
 *
 * @example
 * blockMarkers('dspool').end; // '# <<< dspool dspool <<<'
 */
export function blockMarkers(alias: string): { begin: string; end: string } {
  return {
    begin: `# >>> dspool ${alias} (written by dspool ssh-config --install; edits here are replaced) >>>`,
    end: `# <<< dspool ${alias} <<<`,
  };
}

/**
 * `config` with the managed block for `alias` set to `block`: replaced where it is, else appended.
 *
 * @example
 * upsertConfigBlock('', 'dspool', 'Host dspool\n  Port 2222').change; // 'added'
 */
export function upsertConfigBlock(config: string, alias: string, block: string): { text: string; change: FileChange } {
  const { begin, end } = blockMarkers(alias);
  const wrapped = `${begin}\n${block.trimEnd()}\n${end}\n`;
  const lines = config.split('\n');
  const start = lines.indexOf(begin);
  const stop = start === -1 ? -1 : lines.indexOf(end, start + 1);
  if (start !== -1 && stop !== -1) {
    const text = [...lines.slice(0, start), ...wrapped.trimEnd().split('\n'), ...lines.slice(stop + 1)].join('\n');
    return { text, change: text === config ? 'unchanged' : 'updated' };
  }
  const head = config === '' || config.endsWith('\n\n') ? config : config.endsWith('\n') ? `${config}\n` : `${config}\n\n`;
  return { text: `${head}${wrapped}`, change: 'added' };
}

/** True when a known_hosts host field (comma-separated patterns, or a hashed `|1|salt|hash`) names `host` exactly. */
function namesHost(field: string, host: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    return createHmac('sha1', Buffer.from(salt, 'base64')).update(host).digest('base64') === hash;
  }
  return field.split(',').includes(host);
}

/**
 * `knownHosts` with exactly one line for `host`: `line` (`<host> <type> <base64>`). Other lines for that host (an
 * old key, hashed or not) are removed; every other line is kept as it is.
 *
 * @example
 * upsertKnownHost('', 'dspool-127.0.0.1-2222', 'dspool-127.0.0.1-2222 ssh-ed25519 AAAA…').change; // 'added'
 */
export function upsertKnownHost(knownHosts: string, host: string, line: string): { text: string; change: FileChange } {
  const lines = knownHosts === '' ? [] : knownHosts.replace(/\n$/, '').split('\n');
  const ours = (l: string) => {
    const fields = l.trim().split(/\s+/);
    // A marker (@cert-authority, @revoked) comes first; those lines are not ours to touch.
    return !l.startsWith('#') && !l.startsWith('@') && fields[0] !== undefined && namesHost(fields[0], host);
  };
  const same = lines.filter(ours);
  if (same.length === 1 && same[0]?.trim() === line) return { text: knownHosts, change: 'unchanged' };
  const kept = lines.filter((l) => !ours(l));
  return { text: `${[...kept, line].join('\n')}\n`, change: same.length === 0 ? 'added' : 'updated' };
}

/**
 * Writes `text` to `file` unless it already holds it: through a temporary file and a rename (a reader never sees
 * half a file), keeping the file's mode (`mode` for a new one) and writing through a symlink to its target.
 *
 * @example
 * writeIfChanged('/home/alice/.ssh/config', text, 0o600);
 */
export function writeIfChanged(file: string, text: string, mode: number): void {
  const target = existsSync(file) ? realpathSync(file) : file;
  const before = existsSync(target) ? readFileSync(target, 'utf8') : undefined;
  if (before === text) return;
  replaceFile(target, text, before === undefined ? mode : statSync(target).mode & 0o777);
}

/**
 * Makes `~/.ssh` (0700) when missing; an existing one is left as it is.
 *
 * @example
 * ensureSshDir(join(homedir(), '.ssh')); // made 0700 when missing
 */
export function ensureSshDir(dir: string): void {
  if (!existsSync(dir)) mkdirSync(dir, { recursive: true, mode: 0o700 });
}

/**
 * The text of `file`, or `''` when it does not exist.
 *
 * @example
 * readOrEmpty(join(homedir(), '.ssh', 'config')); // '' on a machine with no ~/.ssh/config yet
 */
export function readOrEmpty(file: string): string {
  return existsSync(file) ? readFileSync(file, 'utf8') : '';
}
