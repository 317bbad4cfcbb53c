// End to end on a real local pool with autoscaling on and `pool.min: 0`: the pool starts empty; Jupyter's own
// polling does not wake it; a login does (0 → 1) and it goes back to 0 once the user's server stops; a burst of
// starts scales it out at once; a rule-driven scale-in drains an instance that holds a session, which keeps
// working until it is stopped, and then the pool is empty again.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rand, TestPool } from './harness.js';

const JUPYTER = '/usr/bin/jupyter-notebook';

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

describe.skipIf(!existsSync(JUPYTER))('a pool that scales to zero and wakes on intent', () => {
  // One session per instance, so every user needs an instance of their own. The scale-in rule: when at most one
  // user is active, remove one instance (fewest sessions first) — with one user left it drains their instance.
  const pool = new TestPool({
    pool: `{ instances: 0, min: 0, max: 3, capacity: { maxSessions: 1 }, autoscale: { enabled: true, interval: 1s, scaleInDelay: 1s, wakeHold: 2m,
      rules: [ { trigger: { metric: activeUsers, grain: 1s, window: 2s, operator: '<=', threshold: 1 }, action: { direction: in, value: 1, cooldown: 1s } } ] } }`,
  });
  const [alice, bob, carol] = [`as${rand()}a`, `as${rand()}b`, `as${rand()}c`];
  const tokens: Record<string, string> = {};
  let admin = '';

  type Instance = { id: string; state: string; draining: boolean };
  const instances = async () => (await (await pool.fetch('/hub/api/instances', { token: admin })).json()) as Instance[];
  const events = async () =>
    (await (await pool.fetch('/hub/api/events?limit=500', { token: admin })).json()) as Array<{ kind: string; message: string; data: Record<string, unknown> }>;
  const server = async (user: string) =>
    ((await (await pool.fetch(`/hub/api/users/${user}`, { token: tokens[user] ?? '' })).json()) as { servers: Record<string, { ready: boolean; instance: string }> }).servers[''];
  const stop = async (user: string) => expect((await pool.fetch(`/hub/api/users/${user}/server`, { method: 'DELETE', token: tokens[user] ?? '' })).status).toBe(204);
  const empty = () => waitFor('an empty pool', async () => ((await instances()).length === 0 ? true : undefined), 60_000);

  beforeAll(async () => {
    await pool.start();
    admin = await pool.addUser(`as${rand()}r`, 'root-pass', true);
    for (const user of [alice, bob, carol]) tokens[user] = await pool.addUser(user, `pw-${user}-secret`);
  }, 120_000);
  afterAll(() => pool.cleanup(), 90_000);

  it('starts with no instance, and polling or a non-browser request to a stopped server does not wake it', async () => {
    expect(await instances()).toEqual([]);
    expect((await pool.fetch(`/user/${alice}/api/kernels`, { token: tokens[alice] ?? '' })).status).toBe(503);
    expect((await pool.fetch(`/user/${alice}/api/status`, { token: tokens[alice] ?? '', headers: { accept: 'application/json' } })).status).toBe(503);
    await new Promise((r) => setTimeout(r, 2500));
    expect(await instances()).toEqual([]);
  });

  it('wakes on a login (0 → 1), and goes back to 0 once the server stops and nobody works', async () => {
    const started = Date.now();
    await pool.login(alice, `pw-${alice}-secret`);
    const woken = await waitFor('an instance after the login', async () => {
      const now = await instances();
      return now.length === 1 ? now : undefined;
    }, 10_000);
    expect(woken).toHaveLength(1);
    const decision = (await events()).find((e) => e.kind === 'autoscale.decision' && e.data.direction === 'out');
    expect(decision?.message).toMatch(/scale out 0 → 1 \(profile default\): 0 queued, 1 waking/);
    expect(decision?.data).toMatchObject({ from: 0, to: 1, cause: 'demand' });
    const { instance } = await pool.startServer(alice, tokens[alice] ?? '', 90_000);
    expect(instance).toBe(woken[0]?.id);
    expect(Date.now() - started).toBeLessThan(90_000);
    // While she works, the scale-in rule (≤ 1 active user) cannot take her instance' room: she holds it.
    await stop(alice);
    await empty();
    expect((await events()).some((e) => e.kind === 'autoscale.decision' && e.data.direction === 'in' && e.data.from === 1 && e.data.to === 0)).toBe(true);
    // Every decision, "no change" included, is counted; the rule's value and threshold are exported.
    const metrics = await (await pool.fetch('/hub/metrics', { token: admin })).text();
    for (const direction of ['out', 'in', 'none']) expect(metrics).toMatch(new RegExp(`dspool_autoscale_decisions_total\\{direction="${direction}",cause="\\w+"\\} [1-9]`));
    expect(metrics).toMatch(/dspool_autoscale_rule_threshold\{rule="default#0",metric="activeUsers",direction="in"\} 1/);
    expect(metrics).toMatch(/dspool_autoscale_target_instances 0/);
  }, 150_000);

  it('scales out at once for a burst of starts, with each user told the pool is waking', async () => {
    const posts = Promise.all([alice, bob, carol].map((u) => pool.fetch(`/hub/api/users/${u}/server`, { method: 'POST', token: tokens[u] ?? '' })));
    // The progress stream replays what was said so far, then follows the start to its end.
    await waitFor("bob's session", async () => (await server(bob)) ?? undefined, 10_000);
    const progress = pool.fetch(`/hub/api/users/${bob}/server/progress`, { token: tokens[bob] ?? '' });
    const responses = await posts;
    for (const r of responses) expect([201, 202]).toContain(r.status);
    const out = await waitFor('a scale-out to 3', async () => (await events()).find((e) => e.kind === 'autoscale.decision' && e.data.direction === 'out' && e.data.to === 3), 15_000);
    expect(out.data).toMatchObject({ direction: 'out', cause: 'demand' }); // from 0 or 1: the first request may be seen alone
    const placed = await Promise.all([alice, bob, carol].map((u) => waitFor(`${u}'s server`, async () => ((await server(u))?.ready ? server(u) : undefined), 120_000)));
    expect(new Set(placed.map((s) => s?.instance)).size).toBe(3);
    const text = await (await progress).text();
    // One instance is named; a batch is counted ("starting 3 instances") when the three requests were seen together.
    expect(text).toMatch(/(Waking the pool|Adding room): starting (instance \S+|\d+ instances) \(\d+ s so far\)/);
    // Each line is said once: the autoscaler's own lines once re-triggered it, repeating one line hundreds of times.
    const messages = [...text.matchAll(/^data: (.*)$/gm)].map((m) => (JSON.parse(m[1] ?? '{}') as { message?: string }).message);
    const repeats = messages.filter((m, i) => i > 0 && m === messages[i - 1]);
    expect(repeats).toEqual([]);
  }, 180_000);

  it('drains an instance that holds a session on scale-in: the session keeps working until it stops', async () => {
    const aliceInstance = (await server(alice))?.instance ?? '';
    await stop(bob);
    await stop(carol);
    const draining = await waitFor("alice's instance draining", async () => {
      const mine = (await instances()).find((i) => i.id === aliceInstance);
      return mine?.draining ? mine : undefined;
    }, 60_000);
    expect(draining.state).toBe('draining');
    expect((await pool.fetch(`/user/${alice}/api/status`, { token: tokens[alice] ?? '' })).status).toBe(200);
    await new Promise((r) => setTimeout(r, 2000));
    expect((await instances()).map((i) => i.id)).toEqual([aliceInstance]);
    expect((await pool.fetch(`/user/${alice}/api/status`, { token: tokens[alice] ?? '' })).status).toBe(200);
    await stop(alice);
    await empty();
  }, 150_000);
});
