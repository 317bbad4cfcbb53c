import { describe, expect, it } from 'vitest';
import { sizeChart } from './chart.js';
import { PoolHistory, sizesFromEvents } from './history.js';

const H = 3_600_000;

describe('the pool size history and its chart', () => {
  it('keeps a point per change, samples a steady pool, and forgets what is older than a day', () => {
    const history = new PoolHistory(24 * H, 5 * 60_000);
    history.record(0, 2, 0);
    history.record(60_000, 2, 0); // same, too soon: dropped
    history.record(120_000, 2, 2);
    history.record(120_000 + 5 * 60_000, 2, 2); // same, but sampled
    history.record(30 * H, 0, 0);
    expect(history.points(0).map((p) => p.atMs)).toEqual([120_000 + 5 * 60_000, 30 * H]);
    expect(history.points(29 * H)).toEqual([{ atMs: 120_000 + 5 * 60_000, instances: 2, ready: 2 }, { atMs: 30 * H, instances: 0, ready: 0 }]);
  });

  it('draws instances and ready instances as steps across the window, with hour labels', () => {
    const svg = sizeChart(
      [{ atMs: 0, instances: 1, ready: 0 }, { atMs: 6 * H, instances: 3, ready: 3 }, { atMs: 18 * H, instances: 0, ready: 0 }],
      { fromMs: 0, toMs: 24 * H, width: 228, height: 126 },
    );
    expect(svg).toMatch(/^<svg id="pool-chart" role="img"/);
    // Plot: x from 28 to 220 (8 px per hour), y from 108 (0) to 8 (3 instances).
    expect(svg).toContain('<path class="instances" d="M28.0,74.7H76.0V8.0H172.0V108.0H220.0"');
    expect(svg).toContain('<path class="ready" d="M28.0,108.0H76.0V8.0H172.0V108.0H220.0"');
    expect(svg).toContain('>06:00</text>');
    expect(svg).toContain('now 0 instances, 0 ready');
    expect(svg).not.toMatch(/<script|https?:\/\/(?!www\.w3\.org)/);
  });

  it('rebuilds the size before the hub started from the event log, across restarts', () => {
    const ev = (h: number, kind: string, id: string, from?: string, to?: string) => ({
      time: new Date(h * H).toISOString(), kind, instanceId: id, data: from ? { from, to } : {},
    });
    // Newest first, as the store lists them: i-1 made at 2h and ready at 2.1h; i-2 made at 5h, ready, then deleted at 9h.
    const events = [
      ev(9, 'instance.state', 'i-2', 'stopping', 'deleted'),
      ev(8.9, 'instance.state', 'i-2', 'ready', 'stopping'),
      { time: new Date(6 * H).toISOString(), kind: 'session.state', instanceId: 'i-2', data: {} },
      ev(5.1, 'instance.state', 'i-2', 'starting', 'ready'),
      ev(5, 'instance.created', 'i-2'),
      ev(2.1, 'instance.state', 'i-1', 'starting', 'ready'),
      ev(2, 'instance.created', 'i-1'),
    ];
    const points = sizesFromEvents(new Map([['i-1', 'ready'], ['i-2', 'deleted']]), events, 0);
    expect(points.map((p) => [p.atMs / H, p.instances, p.ready])).toEqual([
      [0, 0, 0], [2, 1, 0], [2.1, 1, 1], [5, 2, 1], [5.1, 2, 2], [8.9, 2, 1], [9, 1, 1],
    ]);
    const history = new PoolHistory(24 * H, 5 * 60_000);
    history.record(10 * H, 1, 1);
    history.preload(points);
    expect(history.points(0).at(0)).toEqual({ atMs: 0, instances: 0, ready: 0 });
    expect(history.points(0).at(-1)).toEqual({ atMs: 10 * H, instances: 1, ready: 1 });
  });
});
