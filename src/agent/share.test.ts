// The share keeper against real mounts (a bind mount made by a `command` mount, as root): mounted once, found mounted
// by a second keeper, mounted again when someone unmounts it, refused with a loose credentials file, backed off when
// the command fails.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/log.js';
import type { ShareMountSettings } from '../protocol/agent.js';
import { ShareKeeper, type ShareKeeperOptions } from './share.js';

const skip = process.getuid?.() !== 0 ? 'needs root (mount --bind)' : undefined;
if (skip) console.warn(`src/agent/share.test.ts skipped: ${skip}`);

describe.skipIf(skip !== undefined)('the share keeper', () => {
  const root = mkdtempSync(join(tmpdir(), 'dspool-keeper-'));
  const server = join(root, 'server');
  const log = createLogger('test', 'silent');
  const keepers: ShareKeeper[] = [];
  const mounted: string[] = [];
  mkdirSync(server);
  // The "file server": a directory bind-mounted at the share's path by the operator's command, which counts its runs.
  const script = join(root, 'mount-share');
  writeFileSync(script, `#!/bin/sh\necho run >> "${root}/runs"\nexec mount --bind "${server}" "$DSPOOL_SHARE_PATH"\n`, { mode: 0o755 });
  const mount: ShareMountSettings = { type: 'command', command: [script], options: [], timeoutMs: 10_000 };
  const runs = (): number => (existsSync(join(root, 'runs')) ? readFileSync(join(root, 'runs'), 'utf8').split('\n').filter(Boolean).length : 0);
  const keeper = (sharePath: string, extra: Partial<ShareKeeperOptions> = {}): ShareKeeper => {
    mounted.push(sharePath);
    const made = new ShareKeeper({
      sharePath, mount, probeIntervalMs: 200, probeTimeoutMs: 5_000, instanceId: `i-${keepers.length}`, stateDir: join(root, 'state'), log,
      lockDir: join(root, 'locks'), retryMinMs: 200, retryMaxMs: 1_000, ...extra,
    });
    keepers.push(made);
    return made;
  };
  const waitFor = async (what: string, probe: () => boolean, timeoutMs = 15_000): Promise<void> => {
    const deadline = Date.now() + timeoutMs;
    while (!probe()) {
      if (Date.now() > deadline) throw new Error(`${what} did not happen in time`);
      await sleep(50);
    }
  };

  afterEach(() => {
    for (const k of keepers.splice(0)) k.close();
  });
  afterAll(async () => {
    await sleep(300);
    for (const path of mounted) while (spawnSync('umount', [path], { stdio: 'ignore' }).status === 0);
    rmSync(root, { recursive: true, force: true });
  });

  it('mounts the share once, makes the directory under it root-only, and a second keeper finds it mounted', async () => {
    const path = join(root, 'a', 'share');
    const first = keeper(path);
    first.start();
    await first.settled;
    expect(first.status).toEqual({ state: 'ready', ok: true });
    expect(runs()).toBe(1);
    writeFileSync(join(path, 'hello.txt'), 'through the mount');
    expect(readFileSync(join(server, 'hello.txt'), 'utf8')).toBe('through the mount');
    const second = keeper(path);
    second.start();
    await second.settled;
    expect(second.status.ok).toBe(true);
    expect(runs()).toBe(1);
    spawnSync('umount', [path]);
    expect(statSync(path).mode & 0o777).toBe(0);
  });

  it('reports a share someone unmounted, mounts it again and is ready again', async () => {
    const path = join(root, 'b', 'share');
    const k = keeper(path);
    k.start();
    await k.settled;
    const before = runs();
    spawnSync('umount', [path]);
    await waitFor('the unmounted share to be mounted again', () => runs() > before && k.status.ok);
    expect(k.status.ok).toBe(true);
  });

  it('refuses a credentials file others can read, with a clear detail, and never mounts', async () => {
    const cred = join(root, 'cred');
    writeFileSync(cred, 'password=hunter2secret\n', { mode: 0o644 });
    chmodSync(cred, 0o644);
    const before = runs();
    const k = keeper(join(root, 'c', 'share'), { mount: { ...mount, credentialsFile: cred } });
    k.start();
    await k.settled;
    expect(k.status.ok).toBe(false);
    expect(k.status.detail).toMatch(/^cannot mount the share: share\.mount\.credentialsFile: .*cred has mode 0644; make it 0600 .*; trying again in 0 s$/);
    expect(k.status.detail).not.toContain('hunter2secret');
    expect(runs()).toBe(before);
  });

  it('backs off between failed mounts, saying when it tries again', async () => {
    const failing = join(root, 'fail');
    writeFileSync(failing, '#!/bin/sh\necho "mount error(2): No such file or directory" >&2\nexit 32\n', { mode: 0o755 });
    const k = keeper(join(root, 'd', 'share'), { mount: { ...mount, command: [failing] }, retryMinMs: 1_000, retryMaxMs: 4_000 });
    k.start();
    await k.settled;
    expect(k.status.detail).toMatch(/^mounting the share\.mount command at .* failed: .*fail exited with 32: mount error\(2\): No such file or directory; trying again in 1 s$/);
    await waitFor('the second attempt', () => /trying again in 2 s/.test(k.status.detail ?? ''), 5_000);
    await waitFor('the third attempt', () => /trying again in 4 s/.test(k.status.detail ?? ''), 8_000);
  }, 20_000);
});
