import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { pidAlive } from './process.js';

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
