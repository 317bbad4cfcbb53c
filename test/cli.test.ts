// The CLI as a user meets it: bad config, missing Jupyter, no running pool, usage errors — clear messages, no hangs.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli } from './harness.js';

describe('dspool CLI without a running pool', () => {
  const dir = mkdtempSync(join(tmpdir(), 'dspool-cli-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const write = (name: string, text: string) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  };

  it('prints the JSON Schema of pool.yaml', async () => {
    const result = await cli(['config', 'schema']);
    expect(result.code).toBe(0);
    const schema = JSON.parse(result.stdout) as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(['share', 'gateway', 'pool', 'provider']));
  });

  it('refuses a mistyped key at up, naming it, with exit code 2', async () => {
    const file = write('typo.yaml', 'share: { path: ./share }\ngateway: { prot: 8000 }\n');
    const result = await cli(['up', '--config', file]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/gateway\.prot: unknown key \(did you mean "port"\?\)/);
  });

  it('gives one actionable error at up when the Jupyter binary is missing, quickly', async () => {
    const file = write(
      'nojupyter.yaml',
      'share: { path: ./share }\ngateway: { port: 0, sshPort: null }\nhub: { port: 0 }\njupyter: { command: [/nonexistent/jupyter-notebook] }\n',
    );
    const started = Date.now();
    const result = await cli(['up', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/"\/nonexistent\/jupyter-notebook" was not found/);
    expect(result.stderr).toMatch(/apt-get install jupyter-notebook python3-ipykernel/);
    expect(Date.now() - started).toBeLessThan(10_000);
  });

  it('says no pool is running instead of failing obscurely', async () => {
    const file = write('idle.yaml', 'share: { path: ./share }\n');
    const result = await cli(['users', 'list', '--config', file]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/no pool is running/);
  });

  it('exits 2 on unknown flags and extra arguments, naming them', async () => {
    const flag = await cli(['status', '--bogus']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/--bogus/);
    const extra = await cli(['users', 'list', 'extra']);
    expect(extra.code).toBe(2);
    expect(extra.stderr).toMatch(/extra/);
  });

  it('refuses an invalid username before contacting anything', async () => {
    const result = await cli(['users', 'add', '../x']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/invalid username "\.\.\/x"/);
  });

  it('prints the resolved config with config check, every default filled in, also without --json', async () => {
    const file = write('check.yaml', 'share: { path: ./share }\npool: { instances: 3 }\n');
    const result = await cli(['config', 'check', '--config', file]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`# ${file}: valid`);
    expect(result.stdout).toMatch(/^pool:\n {2}instances: 3$/m);
    expect(result.stdout).toMatch(/^ {2}passwordMinLength: 8$/m);
    expect(result.stdout).toMatch(/^ {2}sshPort: 2222$/m);
  });

  it('needs --password-stdin or --no-password to add a user, saying so before contacting anything', async () => {
    const file = write('nopw.yaml', 'share: { path: ./share }\n');
    const none = await cli(['users', 'add', 'dave', '--config', file]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/a password is needed .*--password-stdin.*--no-password/);
    const both = await cli(['users', 'add', 'dave', '--password-stdin', '--no-password', '--config', file], { stdin: 'x\n' });
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/contradict/);
  });

  it('says the pool must have run before ssh-config --install, and writes nothing', async () => {
    const file = write('ssh.yaml', 'share: { path: ./share }\ndataDir: ./never-ran\n');
    const home = join(dir, 'home');
    const result = await cli(['ssh-config', '--install', '--user', 'alice', '--config', file], { env: { HOME: home } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/host key is not known yet: start the pool \(dspool up\) once/);
    expect(existsSync(join(home, '.ssh'))).toBe(false);
  });

  it('refuses a missing identity file and an alias that is not a plain word, with exit code 2', async () => {
    const file = write('ssh2.yaml', 'share: { path: ./share }\n');
    const key = await cli(['ssh-config', '--user', 'alice', '--identity-file', join(dir, 'no-such-key'), '--config', file]);
    expect(key.code).toBe(2);
    expect(key.stderr).toMatch(/--identity-file: .* does not exist/);
    const alias = await cli(['ssh-config', '--user', 'alice', '--host', 'a b', '--config', file]);
    expect(alias.code).toBe(2);
    expect(alias.stderr).toMatch(/--host: "a b" is not a plain alias/);
    writeFileSync(join(dir, 'id_test'), 'private');
    writeFileSync(join(dir, 'id_test.pub'), 'public');
    const printed = await cli(['ssh-config', '--user', 'alice', '--identity-file', join(dir, 'id_test.pub'), '--config', file]);
    expect(printed.code, printed.stderr).toBe(0);
    expect(printed.stdout).toContain(`  IdentityFile ${join(dir, 'id_test')}\n  IdentitiesOnly yes\n`);
  });

  it('reads --config from DSPOOL_CONFIG', async () => {
    const file = write('env.yaml', 'share: { path: ./share }\npool: { instances: 3 }\n');
    const result = await cli(['config', 'check', '--json'], { env: { DSPOOL_CONFIG: file } });
    expect(result.code).toBe(0);
    expect((JSON.parse(result.stdout) as { pool: { instances: number } }).pool.instances).toBe(3);
  });
});
