// A small step chart of the pool's size as inline SVG (no script, no external assets): instances and ready
// instances over a time window, with hour ticks.
import { escapeHtml as esc } from '../../lib/html.js';
import type { SizePoint } from './history.js';

/** What the chart shows and how big it is. */
export interface ChartOptions {
  /** Left and right edge of the time axis, epoch ms. */
  readonly fromMs: number;
  readonly toMs: number;
  /** Pixels. */
  readonly width: number;
  readonly height: number;
}

const PAD = { left: 28, right: 8, top: 8, bottom: 18 };

/**
 * Renders the pool's size as an SVG step chart: the number of instances (blue) and of ready ones (green) holding
 * their value until the next point, up to `toMs`.
 *
 * @example
 * sizeChart([{ atMs: 0, instances: 1, ready: 1 }], { fromMs: 0, toMs: 3_600_000, width: 480, height: 140 });
 */
export function sizeChart(points: readonly SizePoint[], options: ChartOptions): string {
  const { fromMs, toMs, width, height } = options;
  const span = Math.max(1, toMs - fromMs);
  const max = Math.max(1, ...points.map((p) => p.instances));
  const plotW = width - PAD.left - PAD.right;
  const plotH = height - PAD.top - PAD.bottom;
  const x = (ms: number): number => PAD.left + (Math.min(Math.max(ms, fromMs), toMs) - fromMs) / span * plotW;
  const y = (n: number): number => PAD.top + plotH - (n / max) * plotH;
  const step = (value: (p: SizePoint) => number): string => {
    if (points.length === 0) return '';
    let d = '';
    points.forEach((p, i) => {
      const px = x(p.atMs).toFixed(1);
      const py = y(value(p)).toFixed(1);
      d += i === 0 ? `M${px},${py}` : `H${px}V${py}`;
    });
    return `${d}H${x(toMs).toFixed(1)}`;
  };
  const ticks: string[] = [];
  const hourMs = 3_600_000;
  const every = span > 12 * hourMs ? 6 * hourMs : span > 3 * hourMs ? hourMs : 15 * 60_000;
  for (let t = Math.ceil(fromMs / every) * every; t <= toMs; t += every) {
    const label = new Date(t).toISOString().slice(11, 16);
    ticks.push(`<line x1="${x(t).toFixed(1)}" y1="${PAD.top}" x2="${x(t).toFixed(1)}" y2="${PAD.top + plotH}" stroke="#eaeef2"/>`
      + `<text x="${x(t).toFixed(1)}" y="${height - 4}" text-anchor="middle">${label}</text>`);
  }
  // Before the first point (the hub started then) the size is not known: shaded, not drawn as zero.
  const first = points[0];
  const unknown = first === undefined ? x(toMs) - PAD.left : x(first.atMs) - PAD.left;
  const shade = unknown > 1
    ? `<rect class="unknown" x="${PAD.left}" y="${PAD.top}" width="${unknown.toFixed(1)}" height="${plotH}" fill="#f6f8fa"/>`
      + `<text x="${(PAD.left + unknown / 2).toFixed(1)}" y="${(PAD.top + plotH / 2).toFixed(1)}" text-anchor="middle">no record before the hub started</text>`
    : '';
  const last = points.at(-1);
  const title = `Pool size from ${new Date(fromMs).toISOString()} to ${new Date(toMs).toISOString()}${last ? `; now ${last.instances} instances, ${last.ready} ready` : ''}`;
  return `<svg id="pool-chart" role="img" aria-label="${esc(title)}" xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-size="10" font-family="system-ui,sans-serif" fill="#57606a">
<title>${esc(title)}</title>
${shade}
${ticks.join('\n')}
<line x1="${PAD.left}" y1="${PAD.top + plotH}" x2="${width - PAD.right}" y2="${PAD.top + plotH}" stroke="#8c959f"/>
<text x="${PAD.left - 4}" y="${(y(max) + 4).toFixed(1)}" text-anchor="end">${max}</text>
<text x="${PAD.left - 4}" y="${(y(0) + 4).toFixed(1)}" text-anchor="end">0</text>
<path class="instances" d="${step((p) => p.instances)}" fill="none" stroke="#0b5cad" stroke-width="2"/>
<path class="ready" d="${step((p) => p.ready)}" fill="none" stroke="#1a7f37" stroke-width="1.5" stroke-dasharray="4 2"/>
</svg>`;
}
