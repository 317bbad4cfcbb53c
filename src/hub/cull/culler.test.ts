import { pino } from 'pino';
import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import type { ServerReport } from '../../protocol/agent.js';
import type { EventKind, EventLog } from '../events.js';
import type { SessionRecord } from '../store/types.js';
import { Culler } from './culler.js';
import { NoServerToExtendError } from './errors.js';

const START = Date.parse('2026-12-01T10:00:00.000Z');

function setup(options: { saveTimeoutMs?: number; extendedUntil?: string } = {}) {
  let now = START;
  const kept: Array<[string, string]> = [];
  const registry = new Registry();
  const record: SessionRecord = {
    id: 's-1', user: 'alice', name: '', instanceId: 'i-1', state: 'running', url: 'http://x', token: 't'.repeat(16),
    started: new Date(START - 5000).toISOString(), lastActivity: new Date(START).toISOString(), stopped: null, reason: null, profile: null,
    extendedUntil: options.extendedUntil ?? null, stopCause: null,
  };
  let running = true;
  const told: string[] = [];
  const stopped: string[] = [];
  const kinds: EventKind[] = [];
  let exempt: readonly string[] = [];
  const culler = new Culler({
    running: () => (running ? [{ record, profile: null }] : []),
    stop: async (_user, reason) => {
      stopped.push(reason);
      running = false;
    },
    notify: async (_instance, _user, message) => {
      told.push(message);
    },
    policyOf: () => ({ idleTimeoutMs: 60_000, warnBeforeMs: 20_000 }),
    exemptions: { load: async () => exempt, save: async (users) => void (exempt = users) },
    keepExtension: async (id, until) => void kept.push([id, until]),
    registry,
    events: { record: (kind: EventKind) => void kinds.push(kind) } as unknown as EventLog,
    log: pino({ level: 'silent' }),
    saveTimeoutMs: options.saveTimeoutMs ?? 50,
    intervalMs: 60_000,
    now: () => now,
  });
  const report = (work: ServerReport['work']): void =>
    culler.report([{ sessionId: 's-1', user: 'alice', state: 'running', url: 'http://x', startedAt: record.started, ...(work ? { work } : {}) }]);
  const counted = async (action: string): Promise<number> =>
    (await registry.getSingleMetric('dspool_cull_decisions_total')?.get())?.values.find((v) => v.labels.action === action)?.value ?? 0;
  return { culler, told, stopped, kinds, report, kept, counted, at: (ms: number) => (now = START + ms), getExempt: () => exempt };
}

describe('the culler, wired to a session on a virtual clock', () => {
  it('warns on the terminal and in the server model, then asks open pages to save and stops with the reason', async () => {
    const { culler, told, stopped, kinds, counted, at } = setup({ saveTimeoutMs: 30 });
    at(39_000);
    culler.check();
    expect(culler.fieldsOf('s-1')).toEqual({ notice: null, cullAt: null, saveRequested: false });
    at(40_000);
    culler.check();
    expect(culler.fieldsOf('s-1')).toMatchObject({ cullAt: new Date(START + 60_000).toISOString(), saveRequested: false });
    expect(culler.fieldsOf('s-1').notice).toMatch(/done no work since 10:00:00 UTC and will be stopped at 10:01:00 UTC/);
    expect(told[0]).toMatch(/will be stopped at 10:01:00 UTC \(idle timeout 1 min\)/);
    culler.pageSeen('alice');
    at(60_000);
    culler.check();
    expect(culler.fieldsOf('s-1').saveRequested).toBe(true);
    expect(stopped).toEqual([]);
    await new Promise((r) => setTimeout(r, 100));
    expect(stopped[0]).toMatch(/^stopped because it did no work for 1 min \(idle since 2026-12-01T10:00:00.000Z\)/);
    expect(kinds).toEqual(['session.cull_warning', 'session.culled']);
    expect([await counted('warn'), await counted('cull'), await counted('withdraw')]).toEqual([1, 1, 0]);
  });

  it('withdraws the warning when the agent reports work, and counts from the end of it', () => {
    const { culler, told, kinds, report, at } = setup();
    at(45_000);
    culler.check();
    report({ kernelsExecuting: 1, foreground: 0, lastWork: new Date(START + 45_500).toISOString() });
    at(46_000);
    culler.check();
    expect(culler.fieldsOf('s-1').cullAt).toBeNull();
    expect(told.at(-1)).toMatch(/in use again/);
    report({ kernelsExecuting: 0, foreground: 0, lastWork: new Date(START + 300_000).toISOString() });
    at(339_000);
    culler.check();
    expect(culler.fieldsOf('s-1').cullAt).toBeNull();
    at(340_000);
    culler.check();
    expect(culler.fieldsOf('s-1').cullAt).toBe(new Date(START + 360_000).toISOString());
    expect(kinds).toEqual(['session.cull_warning', 'session.cull_withdrawn', 'session.cull_warning']);
  });

  it('counts requests a person made, extends on request, and refuses to extend a stopped server', async () => {
    const { culler, stopped, kept, counted, at, getExempt } = setup();
    culler.personRequest('alice', START + 30_000);
    at(70_000);
    culler.check();
    expect(culler.fieldsOf('s-1').cullAt).toBe(new Date(START + 90_000).toISOString());
    expect(culler.extend('alice', 3_600_000)).toEqual({ extendedUntil: new Date(START + 70_000 + 3_600_000).toISOString(), cullAt: null });
    expect(culler.fieldsOf('s-1').notice).toBeNull();
    expect(kept).toEqual([['s-1', new Date(START + 70_000 + 3_600_000).toISOString()]]);
    expect(await counted('extend')).toBe(1);
    await culler.setExempt('alice', true);
    expect(getExempt()).toEqual(['alice']);
    at(10 * 3_600_000);
    culler.check();
    expect(stopped).toEqual([]);
    expect(() => culler.extend('bob', 1000)).toThrow(NoServerToExtendError);
  });

  it('honours an extension kept on the record by an earlier hub (a restart), then warns in full before the stop', () => {
    // The record says: extended until 10:30; this culler (a restarted hub) never saw the extend call.
    const { culler, stopped, kinds, at } = setup({ extendedUntil: new Date(START + 30 * 60_000).toISOString() });
    at(20 * 60_000);
    culler.check();
    expect(culler.fieldsOf('s-1').cullAt).toBeNull();
    expect(kinds).toEqual([]);
    at(30 * 60_000 - 20_000);
    culler.check();
    expect(culler.fieldsOf('s-1').cullAt).toBe(new Date(START + 30 * 60_000).toISOString());
    expect(stopped).toEqual([]);
  });
});
