import { describe, expect, it } from 'vitest';
import { decideCull, type CullPolicy, type GivenWarning, type IdleSignals } from './decide.js';

const MIN = 60_000;
const policy: CullPolicy = { idleTimeoutMs: MIN, warnBeforeMs: 20_000 };
const idle = (over: Partial<IdleSignals> = {}): IdleSignals => ({ startedMs: 0, busy: false, exempt: false, ...over });

/** Runs the culler's loop over a virtual clock: returns the time of the first warning and of the stop. */
function simulate(signalsAt: (nowMs: number) => IdleSignals, p: CullPolicy, untilMs: number, stepMs = 1000): { warnedAtMs?: number; culledAtMs?: number } {
  let warning: GivenWarning | undefined;
  let firstWarning: number | undefined;
  for (let now = 0; now <= untilMs; now += stepMs) {
    const verdict = decideCull(signalsAt(now), p, warning, now);
    if (verdict.action === 'warn') {
      warning = { warnedAtMs: now, cullAtMs: verdict.cullAtMs };
      firstWarning ??= now;
    }
    if (verdict.action === 'keep' && verdict.withdraw) warning = undefined;
    if (verdict.action === 'cull') return { warnedAtMs: firstWarning, culledAtMs: now };
  }
  return { warnedAtMs: firstWarning };
}

describe('the idle decision (no work, not no traffic)', () => {
  it('keeps a session whose 10-minute cell runs past a 1-minute timeout, and stops it a timeout after the cell ends', () => {
    // The agent reports a kernel executing from 5 s to 10 min 5 s; its last work is then the end of the cell.
    const cellEnd = 10 * MIN + 5000;
    const signals = (now: number) => idle({ busy: now >= 5000 && now < cellEnd, lastWorkMs: now >= 5000 ? Math.min(now, cellEnd) : undefined });
    const { warnedAtMs, culledAtMs } = simulate(signals, policy, 20 * MIN);
    expect(warnedAtMs).toBe(cellEnd + MIN - 20_000);
    expect(culledAtMs).toBe(cellEnd + MIN);
  });

  it('keeps a session while `sleep 600` runs in the foreground of an SSH terminal', () => {
    const signals = (now: number) => idle({ busy: now < 600_000, lastWorkMs: Math.min(now, 600_000) });
    expect(simulate(signals, policy, 600_000).culledAtMs).toBeUndefined();
    expect(simulate(signals, policy, 20 * MIN).culledAtMs).toBe(600_000 + MIN);
  });

  it('stops a session behind idle open tabs: their polling never reaches it as a request a person made', () => {
    // Four tabs poll /api/contents, /api/kernels, /api/sessions every few seconds: the gateway reports none of it,
    // so the only signal is the moment the person last opened a page.
    const signals = () => idle({ lastRequestMs: 3000 });
    expect(simulate(signals, policy, 5 * MIN)).toEqual({ warnedAtMs: 3000 + MIN - 20_000, culledAtMs: 3000 + MIN });
  });

  it('stops a session with an idle, connected VS Code that reconnects on its own', () => {
    // VS Code's exec channel runs a bare shell fed on stdin (no foreground work), its port forwards and reconnects
    // are traffic, not input: the agent reports its initial input only.
    const signals = () => idle({ lastWorkMs: 2000, busy: false });
    expect(simulate(signals, policy, 5 * MIN).culledAtMs).toBe(2000 + MIN);
  });

  it('warns once, a lead time before the stop, and withdraws the warning when work resumes', () => {
    expect(decideCull(idle(), policy, undefined, 39_999)).toMatchObject({ action: 'keep', reason: 'active', cullAtMs: MIN });
    expect(decideCull(idle(), policy, undefined, 40_000)).toEqual({ action: 'warn', idleSinceMs: 0, cullAtMs: MIN });
    const warning = { warnedAtMs: 40_000, cullAtMs: MIN };
    expect(decideCull(idle(), policy, warning, 50_000)).toMatchObject({ action: 'keep', withdraw: false, cullAtMs: MIN });
    expect(decideCull(idle({ lastRequestMs: 45_000 }), policy, warning, 50_000)).toMatchObject({ action: 'keep', withdraw: true });
    expect(decideCull(idle({ busy: true }), policy, warning, 50_000)).toMatchObject({ action: 'keep', reason: 'busy', withdraw: true });
    expect(decideCull(idle(), policy, warning, MIN)).toEqual({ action: 'cull', idleSinceMs: 0, idleMs: MIN });
  });

  it('never stops without a full warning, even when the check comes late (a hub restart)', () => {
    expect(decideCull(idle(), policy, undefined, 10 * MIN)).toEqual({ action: 'warn', idleSinceMs: 0, cullAtMs: 10 * MIN + 20_000 });
    expect(decideCull(idle(), policy, { warnedAtMs: 10 * MIN, cullAtMs: 10 * MIN + 20_000 }, 10 * MIN + 19_999).action).toBe('keep');
  });

  it('warns as soon as the session is idle when the timeout is shorter than the warning lead', () => {
    const short = { idleTimeoutMs: 8000, warnBeforeMs: 600_000 };
    expect(decideCull(idle({ lastWorkMs: 1000 }), short, undefined, 1000)).toEqual({ action: 'warn', idleSinceMs: 1000, cullAtMs: 9000 });
  });

  it('postpones the stop when extended: past the warning window it withdraws, inside it it warns with the new time', () => {
    const warning = { warnedAtMs: 40_000, cullAtMs: MIN };
    expect(decideCull(idle({ extendedUntilMs: 50_000 + 3_600_000 }), policy, warning, 50_000)).toMatchObject({ action: 'keep', withdraw: true, cullAtMs: 3_650_000 });
    expect(decideCull(idle({ extendedUntilMs: 65_000 }), policy, warning, 50_000)).toEqual({ action: 'warn', idleSinceMs: 0, cullAtMs: 65_000 });
  });

  it('never culls an exempt user or a profile without a timeout', () => {
    expect(decideCull(idle({ exempt: true }), policy, undefined, 100 * MIN)).toMatchObject({ action: 'keep', reason: 'exempt' });
    expect(decideCull(idle(), { idleTimeoutMs: null, warnBeforeMs: 0 }, undefined, 100 * MIN)).toMatchObject({ action: 'keep', reason: 'no-timeout' });
  });
});
