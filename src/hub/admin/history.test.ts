import { describe, expect, it } from 'vitest';
import { sizeChart } from './chart.js';
import { PoolHistory } from './history.js';

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
});
