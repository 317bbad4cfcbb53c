// `dspool simulate` as a user runs it: the shipped traces meet the targets, the result is the same for a seed,
// and a bad trace line is refused with its line number (exit 2).
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, rand, ROOT } from './harness.js';

const traces = join(ROOT, 'bench', 'traces');
type Result = { policy: string; ratio: number; waitP95Ms: number; killed: number; unplaced: number; scalingEvents: number };

async function simulate(trace: string, config: string, extra: string[] = []): Promise<{ results: Result[] }> {
  const run = await cli(['simulate', '--trace', join(traces, trace), '--config', join(traces, config), '--json', ...extra]);
  expect(run.stderr).toBe('');
  expect(run.code).toBe(0);
  return JSON.parse(run.stdout) as { results: Result[] };
}

describe('dspool simulate', () => {
  it('meets the targets on the workday trace with the configured autoscaler: ≤ 1.15 × oracle, p95 wait ≤ 5 s, none killed', async () => {
    const { results } = await simulate('workday.jsonl', 'workday.pool.yaml');
    expect(results.map((r) => r.policy)).toEqual(['static', 'cpu-rule', 'configured']);
    const configured = results.find((r) => r.policy === 'configured');
    expect(configured?.ratio).toBeLessThanOrEqual(1.15);
    expect(configured?.waitP95Ms).toBeLessThanOrEqual(5000);
    for (const r of results) expect([r.policy, r.killed, r.unplaced]).toEqual([r.policy, 0, 0]);
  }, 60_000);

  it('gives the same result for the same seed', async () => {
    const a = await simulate('class.jsonl', 'class.pool.yaml', ['--seed', '7']);
    const b = await simulate('class.jsonl', 'class.pool.yaml', ['--seed', '7']);
    const c = await simulate('class.jsonl', 'class.pool.yaml', ['--seed', '8']);
    expect(b).toEqual(a);
    expect(c).not.toEqual(a);
  }, 60_000);

  it('refuses an unparseable trace line with its number, and an unknown policy (exit 2)', async () => {
    const file = join(tmpdir(), `trace-${rand()}.jsonl`);
    writeFileSync(file, '{"at":"08:00","user":"ann","duration":"1h"}\n{"at":"08:01","user":"bob" "duration":"1h"}\n');
    const bad = await cli(['simulate', '--trace', file]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(new RegExp(`invalid trace .*trace-.*\\.jsonl:2: not JSON`));
    const policy = await cli(['simulate', '--trace', join(traces, 'class.jsonl'), '--compare', 'static,magic']);
    expect(policy.code).toBe(2);
    expect(policy.stderr).toMatch(/--compare: unknown policy "magic"/);
  }, 60_000);
});
