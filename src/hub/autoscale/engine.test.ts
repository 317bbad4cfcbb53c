import { describe, expect, it } from 'vitest';
import { poolSchema } from '../../config/pool-schema.js';
import { Autoscaler, actionTarget, scaleInOrder, type InstanceSnapshot, type PoolSnapshot } from './engine.js';
import { autoscaleSettings } from './options.js';

/** A pool whose snapshot the test sets, and a clock it moves. */
function rig(poolYaml: Record<string, unknown>, start = Date.parse('2026-01-05T10:00:00Z')) {
  const settings = autoscaleSettings({ pool: poolSchema.parse(poolYaml) } as never);
  let now = start;
  let snap: PoolSnapshot = pool(1, { sessions: 0 });
  const scaler = new Autoscaler(settings, { snapshot: () => snap }, { now: () => now });
  return {
    scaler,
    set(next: PoolSnapshot) {
      snap = next;
    },
    advance(ms: number) {
      now += ms;
    },
    /** Ticks every `stepMs` for up to `forMs`; returns the first decision that changes the size, else the last. */
    run(forMs: number, stepMs = 10_000) {
      let last = scaler.tick();
      for (let t = stepMs; t <= forMs && last.direction === 'none'; t += stepMs) {
        now += stepMs;
        last = scaler.tick();
      }
      return last;
    },
  };
}

/** `n` instances of 4 slots with `sessions` spread from the first. */
function pool(n: number, o: { sessions?: number; cpu?: number; queued?: number; intents?: number; slots?: number } = {}): PoolSnapshot {
  const slots = o.slots ?? 4;
  let left = o.sessions ?? 0;
  const instances: InstanceSnapshot[] = Array.from({ length: n }, (_, i) => {
    const s = Math.min(slots, left);
    left -= s;
    return { id: `i-${i}`, sessions: s, freeSlots: slots - s, createdMs: i * 1000, protected: false };
  });
  return {
    instances, sessions: o.sessions ?? 0, queued: o.queued ?? 0, intents: o.intents ?? 0, activeUsers: o.sessions ?? 0,
    slotsPerInstance: slots, cpuPercent: o.cpu ?? 0, memoryPercent: 0,
  };
}

const cpuOut = (threshold: number, value = 1, cooldown = '5m') => ({
  trigger: { metric: 'cpu', grain: '1m', window: '2m', operator: '>', threshold }, action: { direction: 'out', value, cooldown },
});
const cpuIn = (threshold: number, value = 1, cooldown = '5m') => ({
  trigger: { metric: 'cpu', grain: '1m', window: '2m', operator: '<', threshold }, action: { direction: 'in', value, cooldown },
});

describe('autoscale rules', () => {
  it('scales out when any scale-out rule fires, by the largest of them', () => {
    const r = rig({ min: 0, max: 10, autoscale: { enabled: true, rules: [cpuOut(70, 1), cpuOut(50, 3), { ...cpuOut(99, 5) }] } });
    r.set(pool(2, { sessions: 4, cpu: 80 }));
    const d = r.run(120_000);
    expect(d.direction).toBe('out');
    expect(d.to).toBe(5);
    expect(d.cause).toBe('rule');
    expect(d.rule).toMatchObject({ rule: 'default#1', metric: 'cpu', threshold: 50, value: 80 });
  });

  it('does not judge a rule before its window has data', () => {
    const r = rig({ autoscale: { enabled: true, rules: [cpuOut(70)] } });
    r.set(pool(2, { sessions: 4, cpu: 90 }));
    const d = r.scaler.tick();
    expect(d.direction).toBe('none');
    expect(d.evaluations[0]?.value).toBeNull();
  });

  it('scales in only when every scale-in rule agrees, by the smallest change', () => {
    const memIn = { trigger: { metric: 'sessionsPerInstance', grain: '1m', window: '2m', operator: '<', threshold: 1 }, action: { direction: 'in', value: 1, cooldown: '1m' } };
    const r = rig({ min: 0, max: 10, autoscale: { enabled: true, rules: [cpuIn(20, 3), memIn] } });
    r.set(pool(6, { sessions: 6, cpu: 10 }));
    const blocked = r.run(120_000);
    expect(blocked.direction).toBe('none');
    expect(blocked.reason).toContain('default#1 does not agree');
    r.set(pool(6, { sessions: 2, cpu: 10 }));
    const d = r.run(120_000);
    expect(d.direction).toBe('in');
    expect(d.to).toBe(5); // the smaller change (1) of the two rules (3 and 1)
    expect(d.drain).toHaveLength(1);
  });

  it('holds a rule back during its cooldown after any scaling action', () => {
    const r = rig({ max: 10, autoscale: { enabled: true, rules: [cpuOut(70, 1, '3m')] } });
    r.set(pool(2, { sessions: 4, cpu: 90 }));
    expect(r.run(120_000).to).toBe(3);
    r.set(pool(3, { sessions: 4, cpu: 90 }));
    r.advance(60_000);
    const cooling = r.scaler.tick();
    expect(cooling.direction).toBe('none');
    expect(cooling.evaluations[0]).toMatchObject({ fired: true, cooling: true });
    r.advance(120_000);
    expect(r.scaler.tick().to).toBe(4);
  });

  it('never scales in to a size that would scale straight out again (flapping)', () => {
    // 4 instances at 40 % CPU: dropping to 2 would make 80 % > 70 % and scale out; 3 gives 53 %, which is fine.
    const r = rig({ min: 0, max: 10, autoscale: { enabled: true, rules: [cpuOut(70), cpuIn(50, 2, '1m')] } });
    r.set(pool(4, { sessions: 4, cpu: 40, slots: 8 }));
    const d = r.run(120_000);
    expect(d.direction).toBe('in');
    expect(d.to).toBe(3);
    expect(d.reason).toMatch(/stopped at 3: fewer would fire rule default#0/);
    // At 60 % nothing can go: even 3 instances would be at 80 %.
    const r2 = rig({ min: 0, max: 10, autoscale: { enabled: true, rules: [cpuOut(70), cpuIn(65, 1, '1m')] } });
    r2.set(pool(4, { sessions: 4, cpu: 60, slots: 8 }));
    const held = r2.run(120_000);
    expect(held.direction).toBe('none');
    expect(held.reason).toContain('flapping');
  });

  it('keeps an idle instance while warm slots are wanted and draining it would leave only them (no drain-then-restart)', () => {
    // Packed: i-0 has 6 of 8 sessions (2 free), i-1 is idle. Draining i-1 leaves exactly the 2 warm slots, so the
    // next session would scale straight out again: i-1 stays, however long the surplus lasts.
    const r = rig({ min: 0, max: 10, autoscale: { enabled: true, warmSlots: 2, scaleInDelay: '30s' } });
    const packed = (first: number, second = 0): PoolSnapshot => {
      const base = pool(2, { slots: 8 });
      const instances = [
        { ...(base.instances[0] as InstanceSnapshot), sessions: first, freeSlots: 8 - first },
        { ...(base.instances[1] as InstanceSnapshot), sessions: second, freeSlots: 8 - second },
      ];
      return { ...base, instances, sessions: first + second, activeUsers: first + second };
    };
    r.set(packed(6));
    const held = r.run(10 * 60_000);
    expect(held).toMatchObject({ direction: 'none' });
    expect(held.reason).toMatch(/keeping i-1: without it 2 free slot\(s\) would be left for 2 wanted, and the next session would scale straight out again/);
    // With 5 sessions, 3 would be left: i-1 goes once the surplus lasted the delay …
    r.set(packed(5));
    const drained = r.run(60_000);
    expect(drained).toMatchObject({ direction: 'in', to: 1, drain: ['i-1'] });
    // … and the next session to arrive does not scale out again.
    const one = pool(1, { slots: 8, sessions: 6 });
    r.set(one);
    r.advance(5_000);
    expect(r.scaler.tick().direction).toBe('none');
    // Without warm slots nothing is held back: an idle instance goes as soon as the delay has passed.
    const cold = rig({ min: 0, max: 10, autoscale: { enabled: true, warmSlots: 0, scaleInDelay: '30s' } });
    cold.set(packed(7));
    expect(cold.run(60_000)).toMatchObject({ direction: 'in', to: 1, drain: ['i-1'] });
  });

  it('covers queued requests and intents at once, ignoring cooldowns, and keeps warm slots while anyone works', () => {
    const r = rig({ min: 0, max: 10, autoscale: { enabled: true, warmSlots: 2 } });
    r.set(pool(0, { queued: 1 }));
    expect(r.scaler.tick()).toMatchObject({ direction: 'out', to: 1, cause: 'demand' });
    r.set(pool(0, { intents: 1 }));
    expect(r.scaler.tick()).toMatchObject({ direction: 'out', to: 1 });
    // 3 sessions on 4 slots leave 1 free; 2 warm wanted: one more instance.
    r.set(pool(1, { sessions: 3 }));
    expect(r.scaler.tick()).toMatchObject({ direction: 'out', to: 2 });
  });

  it('goes to zero once nobody works, after the scale-in delay, and only drains empty-enough instances', () => {
    const r = rig({ min: 0, max: 10, autoscale: { enabled: true, warmSlots: 1, scaleInDelay: '30s' } });
    r.set(pool(2, { sessions: 1 }));
    expect(r.scaler.tick().reason).toMatch(/surplus of 1/);
    r.advance(30_000);
    const d = r.scaler.tick();
    expect(d).toMatchObject({ direction: 'in', to: 1, drain: ['i-1'] });
    r.set(pool(1, { sessions: 0 }));
    r.advance(1000);
    r.scaler.tick();
    r.advance(30_000);
    expect(r.scaler.tick()).toMatchObject({ direction: 'in', to: 0, drain: ['i-0'] });
  });

  it('respects the profile bounds whatever the rules say', () => {
    const r = rig({ min: 1, max: 3, autoscale: { enabled: true, rules: [cpuOut(10, 5, '0s')] } });
    r.set(pool(0));
    expect(r.scaler.tick()).toMatchObject({ to: 1, cause: 'bounds' });
    r.set(pool(2, { sessions: 2, cpu: 90 }));
    expect(r.run(120_000)).toMatchObject({ to: 3, cause: 'rule' });
    r.set(pool(3, { sessions: 2, cpu: 90 }));
    expect(r.run(120_000).reason).toMatch(/would scale out \(rule default#0: cpu 90 > 10\) but profile "default" allows at most 3/);
    r.set(pool(5, { sessions: 2 }));
    expect(r.scaler.tick()).toMatchObject({ to: 3, cause: 'bounds' });
  });

  it('computes each action type from the current size', () => {
    expect(actionTarget({ direction: 'out', type: 'ChangeCount', value: 2, cooldownMs: 0 }, 3)).toBe(5);
    expect(actionTarget({ direction: 'in', type: 'PercentChangeCount', value: 10, cooldownMs: 0 }, 3)).toBe(2);
    expect(actionTarget({ direction: 'in', type: 'ExactCount', value: 1, cooldownMs: 0 }, 3)).toBe(1);
    expect(actionTarget({ direction: 'in', type: 'ChangeCount', value: 5, cooldownMs: 0 }, 3)).toBe(0);
  });

  it('orders scale-in candidates by policy and never offers a protected instance', () => {
    const list: InstanceSnapshot[] = [
      { id: 'a', sessions: 2, freeSlots: 2, createdMs: 1, protected: false },
      { id: 'b', sessions: 0, freeSlots: 4, createdMs: 2, protected: false },
      { id: 'c', sessions: 1, freeSlots: 3, createdMs: 3, protected: false },
      { id: 'd', sessions: 0, freeSlots: 4, createdMs: 4, protected: true },
    ];
    expect(scaleInOrder(list, 'fewest-sessions').map((i) => i.id)).toEqual(['b', 'c', 'a']);
    expect(scaleInOrder(list, 'newest').map((i) => i.id)).toEqual(['c', 'b', 'a']);
    expect(scaleInOrder(list, 'oldest').map((i) => i.id)).toEqual(['a', 'b', 'c']);
  });
});
