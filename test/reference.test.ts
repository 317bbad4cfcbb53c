// The README's CLI reference stays true: every documented command exists and has --help, every command the CLI has
// is documented, and each documented --json output is exactly one JSON document.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildProgram } from '../src/cli/main.js';
import { API_ROUTES } from '../src/hub/http/openapi.js';
import { ROOT, TestPool, cli, rand } from './harness.js';

interface Documented {
  /** e.g. `users keys add <name> <pubkey-file | ->` */
  text: string;
  /** e.g. ['users', 'keys', 'add'] */
  path: string[];
  json: boolean;
}

const documented: Documented[] = readFileSync(join(ROOT, 'README.md'), 'utf8')
  .split('\n')
  .map((line) => /^\| `dspool ([^`]+)`/.exec(line)?.[1])
  .filter((text): text is string => text !== undefined)
  .map((text) => ({
    text,
    path: text.split(/\s+/).filter((_word, i, all) => all.slice(0, i + 1).every((x) => /^[a-z][a-z-]*$/.test(x))),
    json: text.includes('[--json]'),
  }));

function leafCommands(command: Command, prefix: string[] = []): string[][] {
  if (command.commands.length === 0) return [prefix];
  return command.commands.flatMap((sub) => leafCommands(sub, [...prefix, sub.name()]));
}

describe('the README CLI reference', () => {
  it('documents every command the CLI has', () => {
    const documentedPaths = new Set(documented.map((d) => d.path.join(' ')));
    const missing = leafCommands(buildProgram()).map((p) => p.join(' ')).filter((p) => !documentedPaths.has(p));
    expect(missing).toEqual([]);
    expect(documented.length).toBeGreaterThan(10);
  });

  it('lists only commands that exist, each with --help', async () => {
    for (const command of documented) {
      const result = await cli([...command.path, '--help']);
      expect(result.code, `dspool ${command.path.join(' ')} --help: ${result.stderr}`).toBe(0);
      expect(result.stdout).toContain(`Usage: dspool ${command.path.join(' ')}`);
    }
  });
});

describe('the README REST reference', () => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const rows = new Set(
    readme
      .split('\n')
      .map((line) => /^\| `(GET|POST|PUT|PATCH|DELETE) (\/hub\/api[^`]*)`/.exec(line))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => `${m[1]?.toLowerCase()} ${m[2]}`),
  );
  const routes = new Set(API_ROUTES.map((r) => `${r.method} /hub/api${r.path === '/' ? '/' : r.path.replace(/:([a-z_]+)/g, '<$1>')}`));

  it('lists every route of the API, and only those', () => {
    expect([...routes].filter((r) => !rows.has(r))).toEqual([]);
    expect([...rows].filter((r) => !routes.has(r))).toEqual([]);
  });
});

describe('documented --json outputs', () => {
  const pool = new TestPool({ instances: 1 });
  const user = `q${rand()}`;
  /** A user whose server runs (for `dspool extend`). */
  const runner = `u${rand()}`;
  let instance = '';

  beforeAll(async () => {
    await pool.start();
    await pool.addUser(user, 'pw');
    await pool.startServer(runner, await pool.addUser(runner, 'pw'));
    const listed = await pool.cli(['instances', 'list', '--json']);
    instance = (JSON.parse(listed.stdout) as Array<{ id: string }>)[0]?.id ?? '';
  }, 180_000);
  afterAll(() => pool.cleanup(), 90_000);

  it('prints exactly one JSON document for each command documented with --json', async () => {
    const jsonCommands = documented.filter((d) => d.json);
    expect(jsonCommands.length).toBeGreaterThan(4);
    for (const command of jsonCommands) {
      const fresh = `n${rand()}`;
      const args = command.text
        .replace(/\[--json\]/, '--json')
        .replace('[--user u]', `--user ${runner}`)
        .replace(/\[[^\]]*\]/g, '')
        .replace('users add <name>', `users add ${fresh} --no-password`)
        .replace(/<name>/g, user)
        .replace(/<id>/g, instance)
        .replace(/<instances>/g, '1')
        .split(/\s+/)
        .filter(Boolean);
      if (args[0] === 'users' && args[1] === 'add') pool.remember(fresh);
      const result = await pool.cli(args);
      expect(result.code, `dspool ${args.join(' ')}: ${result.stderr}`).toBe(0);
      expect(() => JSON.parse(result.stdout), `dspool ${args.join(' ')} printed: ${result.stdout.slice(0, 200)}`).not.toThrow();
    }
  });
});
