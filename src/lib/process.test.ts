import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { pidAlive, procStat } from './process.js';

describe('procStat', () => {
  it('reads the fields after a command name holding spaces and parentheses, and nothing for a missing process', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'dspool-procstat-'));
    const program = join(dir, 'sl) e (p');
    copyFileSync('/bin/sleep', program);
    const child = spawn(program, ['30'], { detached: true });
    try {
      await once(child, 'spawn');
      const stat = procStat(child.pid ?? 0);
      expect(stat).toMatchObject({ ppid: process.pid, pgrp: child.pid, session: child.pid, tpgid: -1 });
      expect(stat?.state).toMatch(/^[RSD]$/);
      expect(procStat(2 ** 22 + 7)).toBeUndefined();
    } finally {
      child.kill('SIGKILL');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('pidAlive', () => {
  it('is true for a running process and false once it exited and was reaped', async () => {
    const child = spawn('sleep', ['30']);
    const pid = child.pid ?? 0;
    expect(pidAlive(pid)).toBe(true);
    child.kill('SIGKILL');
    await once(child, 'exit');
    expect(pidAlive(pid)).toBe(false);
  });

  it('counts a zombie (exited, not yet reaped) as gone', async () => {
    // The shell starts `true` in the background and then sleeps without reaping it.
    const parent = spawn('sh', ['-c', 'true & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const [line] = (await once(parent.stdout, 'data')) as [Buffer];
    const zombie = Number(line.toString().trim());
    const deadline = Date.now() + 5000;
    while (pidAlive(zombie) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(pidAlive(zombie)).toBe(false);
    parent.kill('SIGKILL');
  });
});
