import { readFileSync } from 'node:fs';
import pty from 'node-pty';
import { afterEach, describe, expect, it } from 'vitest';
import { procStat } from '../lib/process.js';
import { isBareShell, jupyterWork, mergeWork, ptyForeground, sshWork } from './activity.js';
import type { SshSessionInfo } from './ssh/index.js';

const waitFor = async (check: () => boolean, ms: number, what: string): Promise<void> => {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

/** The command of the terminal's foreground process group leader, as /proc shows it. */
const foregroundCommand = (shellPid: number): string => {
  try {
    return readFileSync(`/proc/${procStat(shellPid)?.tpgid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
};

const session = (over: Partial<SshSessionInfo>): SshSessionInfo => ({
  user: 'alice', kind: 'shell', pid: 1, startedAt: new Date(1000), lastInputAt: new Date(1000), pty: true, ...over,
});

describe('work on a terminal', () => {
  const terms: pty.IPty[] = [];
  afterEach(() => {
    for (const term of terms.splice(0)) term.kill('SIGKILL');
  });

  it('sees a foreground job in a real shell on a pty, and not the idle prompt', { timeout: 120_000 }, async () => {
    const term = pty.spawn('/bin/bash', ['--norc', '-i'], { cols: 80, rows: 24, env: { PATH: '/usr/bin:/bin', PS1: 'ready$ ' } });
    terms.push(term);
    let output = '';
    term.onData((d) => (output += d));
    await waitFor(() => output.includes('ready$'), 30_000, 'the prompt');
    expect(ptyForeground(term.pid)).toBe(false);
    term.write('sleep 600\r');
    await waitFor(() => ptyForeground(term.pid), 30_000, 'sleep to run in the foreground');
    // Ctrl-C only once the job is `sleep` itself: bash's child swallows a SIGINT that lands between its fork and exec
    // (a CI run lost it that way and sleep ran on).
    await waitFor(() => foregroundCommand(term.pid) === 'sleep', 30_000, 'the foreground job to be sleep');
    term.write('\x03');
    await waitFor(() => !ptyForeground(term.pid), 30_000, 'the prompt again');
    // A job sent to the background is not the terminal's foreground.
    term.write('sleep 600 &\r');
    await new Promise((r) => setTimeout(r, 500));
    expect(ptyForeground(term.pid)).toBe(false);
    expect(ptyForeground(2 ** 22 + 7)).toBe(false);
  });
});

describe('work in SSH sessions', () => {
  it('counts `sleep 600` typed into an SSH terminal, and keystrokes, but not a connection that only sits there', () => {
    const fg = (pid: number) => pid === 42;
    expect(sshWork([session({ pid: 42, lastInputAt: new Date(5000) })], 9000, fg)).toEqual({ kernelsExecuting: 0, foreground: 1, lastWork: new Date(9000).toISOString() });
    expect(sshWork([session({ pid: 7, lastInputAt: new Date(5000) })], 9000, fg)).toEqual({ kernelsExecuting: 0, foreground: 0, lastWork: new Date(5000).toISOString() });
    expect(sshWork([session({ pid: 7 })], 9000, fg)).toEqual({ kernelsExecuting: 0, foreground: 0 });
  });

  it('does not count an idle, connected VS Code: its agent runs in a bare shell fed on stdin', () => {
    // Each reconnect opens a new exec channel running `bash` and writes the setup script into it.
    const vscode = [1000, 60_000, 120_000].map((t) =>
      session({ kind: 'exec', command: 'bash', pty: false, pid: t, startedAt: new Date(t), lastInputAt: new Date(t + 50) }),
    );
    expect(sshWork(vscode, 130_000, () => true)).toEqual({ kernelsExecuting: 0, foreground: 0 });
  });

  it('counts a command that runs (`ssh host python train.py`, scp) but not sftp', () => {
    const work = sshWork(
      [session({ kind: 'exec', command: 'python3 train.py', pty: false }), session({ kind: 'sftp', pty: false, lastInputAt: new Date(9000) })],
      10_000,
      () => false,
    );
    expect(work).toEqual({ kernelsExecuting: 0, foreground: 1, lastWork: new Date(10_000).toISOString() });
  });

  it('knows a bare shell from a command', () => {
    for (const bare of ['bash', '/bin/bash', 'sh -s', 'exec /usr/bin/zsh -l', ' bash ']) expect(isBareShell(bare)).toBe(true);
    for (const command of ['bash script.sh', 'sleep 600', 'python3 -c "x"', 'scp -t .', 'bash -c "sleep 1"']) expect(isBareShell(command)).toBe(false);
  });
});

describe('work in a Jupyter server', () => {
  it('counts a kernel executing code a person sent and its last work, not a kernel that only answered a reconnect', () => {
    const work = jupyterWork(
      [
        { execution_state: 'idle', dspool_executing: false, dspool_last_work: '2026-12-01T10:00:00.000Z' },
        // A tab reconnected: notebook 6 says busy (kernel_info), the patch knows it was no work.
        { execution_state: 'busy', dspool_executing: false, dspool_last_work: null },
      ],
      [{ dspool_foreground: false, dspool_last_input: '2026-12-01T10:05:00.000Z' }],
      Date.parse('2026-12-01T11:00:00.000Z'),
    );
    expect(work).toEqual({ kernelsExecuting: 0, foreground: 0, lastWork: '2026-12-01T10:05:00.000Z' });
  });

  it('stamps work running now with the clock, and falls back to execution_state without the patch', () => {
    const now = Date.parse('2026-12-01T11:00:00.000Z');
    expect(jupyterWork([{ dspool_executing: true, dspool_last_work: '2026-12-01T10:00:00.000Z' }], [], now)).toEqual({ kernelsExecuting: 1, foreground: 0, lastWork: '2026-12-01T11:00:00.000Z' });
    expect(jupyterWork([{ execution_state: 'busy' }], [{ dspool_foreground: true }], now)).toEqual({ kernelsExecuting: 1, foreground: 1, lastWork: '2026-12-01T11:00:00.000Z' });
    expect(jupyterWork([{ execution_state: 'idle' }], [], now)).toEqual({ kernelsExecuting: 0, foreground: 0 });
  });

  it('adds up the server and its SSH sessions', () => {
    expect(mergeWork({ kernelsExecuting: 1, foreground: 0, lastWork: '2026-12-01T10:00:00.000Z' }, undefined, { kernelsExecuting: 0, foreground: 2, lastWork: '2026-12-01T09:00:00.000Z' }))
      .toEqual({ kernelsExecuting: 1, foreground: 2, lastWork: '2026-12-01T10:00:00.000Z' });
  });
});
