// `/hub/admin`, for admins: the instances (state, sessions, load), the pool's size over the last day as a small
// inline SVG chart beside the scaling events and their reasons, and the wait queue. No script, no external assets.
import { Hono } from 'hono';
import { escapeHtml as esc } from '../../lib/html.js';
import { sizeChart } from '../admin/chart.js';
import type { EventRecord } from '../store/types.js';
import { page } from './pages.js';
import type { HubEnv, HubServices } from './services.js';

const DAY_MS = 86_400_000;

/**
 * Events about the pool's size and why it changed (instances made, drained, removed; the autoscaler's decisions).
 *
 * @example
 * isScalingEvent('instance.created'); // true
 * isScalingEvent('session.start'); // false
 */
export function isScalingEvent(kind: string): boolean {
  return kind.startsWith('pool.') || kind.startsWith('autoscale') || kind.startsWith('scale')
    || ['instance.created', 'instance.deleted', 'instance.drain', 'instance.failed'].includes(kind);
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`;
const time = (iso: string): string => iso.replace('T', ' ').slice(0, 19);

function reasonOf(event: EventRecord): string {
  const data = event.data;
  const parts = ['reason', 'rule', 'metric', 'value', 'threshold']
    .filter((key) => data[key] !== undefined && data[key] !== null)
    .map((key) => `${key}: ${typeof data[key] === 'object' ? JSON.stringify(data[key]) : String(data[key])}`);
  return parts.join(' · ');
}

/**
 * Builds the admin page route (mounted at `/hub`).
 *
 * @example
 * app.route('/hub', adminRoutes(services));
 */
export function adminRoutes(s: HubServices): Hono<HubEnv> {
  const routes = new Hono<HubEnv>();
  routes.get('/admin', async (c) => {
    const who = c.get('identity');
    if (!who) return c.redirect(`/hub/login?next=${encodeURIComponent('/hub/admin')}`);
    if (!who.admin) return c.html(page('Forbidden', '<p class="error" role="alert">The admin page is for admins only.</p>', who.user), 403);
    const now = Date.now();
    const instances = s.pool.list().filter((v) => v.state !== 'deleted');
    const rows = instances
      .map((v) => {
        const flags = [v.draining ? 'draining' : '', v.protected ? 'protected' : ''].filter(Boolean).join(', ');
        const load = v.load ? `load ${v.load.cpu.toFixed(2)} per core · ${gib(v.load.memoryUsedBytes)} / ${gib(v.load.memoryTotalBytes)} memory` : '—';
        return `<tr><td><code>${esc(v.id)}</code></td><td>${esc(v.state)}${flags ? ` <span class="muted">(${esc(flags)})</span>` : ''}</td><td>${s.sessions.countOn(v.id)}</td><td>${esc(load)}</td><td>${esc(v.detail ?? '')}</td></tr>`;
      })
      .join('\n');
    const events = (await s.store.listEvents({ limit: 1000 })).filter((e) => isScalingEvent(e.kind) && Date.parse(e.time) >= now - DAY_MS);
    const eventItems = events
      .slice(0, 50)
      .map((e) => {
        const reason = reasonOf(e);
        return `<li><time>${esc(time(e.time))}</time> <code>${esc(e.kind)}</code> ${esc(e.message)}${reason ? `<br><span class="muted">${esc(reason)}</span>` : ''}</li>`;
      })
      .join('\n');
    const queue = s.sessions.queued(now);
    const queueRows = queue
      .map((q) => `<tr><td>${q.position}</td><td>${esc(q.user)}</td><td>${esc(q.profile ?? '—')}</td><td>${Math.round(q.waitedMs / 1000)} s</td><td>${esc(q.reason)}</td></tr>`)
      .join('\n');
    const chart = sizeChart(s.history.points(now - DAY_MS), { fromMs: now - DAY_MS, toMs: now, width: 480, height: 150 });
    const body = `<style>
main.admin{max-width:64rem} table{border-collapse:collapse;width:100%;font-size:.9rem} th,td{text-align:left;padding:.3rem .5rem;border-bottom:1px solid #eaeef2;vertical-align:top}
.split{display:flex;gap:1.5rem;flex-wrap:wrap;align-items:flex-start} .split>*{flex:1 1 22rem} ol.events{font-size:.85rem;padding-left:1.2rem;max-height:20rem;overflow:auto;margin:0}
.legend span{display:inline-block;width:1.2rem;height:0;border-top:2px solid #0b5cad;vertical-align:middle;margin-right:.3rem} .legend span.ready{border-top:2px dashed #1a7f37}
</style>
<h2>Instances <span class="muted">(${instances.length}, ${s.pool.ready().length} ready)</span></h2>
<table id="instances"><thead><tr><th>instance</th><th>state</th><th>sessions</th><th>load</th><th>detail</th></tr></thead>
<tbody>${rows || '<tr><td colspan="5" class="muted">No instances: the pool is at zero.</td></tr>'}</tbody></table>
<h2>Pool size, last 24 hours</h2>
<div class="split">
<figure style="margin:0">${chart}
<figcaption class="legend muted"><span></span>instances <span class="ready"></span>ready (UTC)</figcaption></figure>
<section aria-labelledby="scaling"><h3 id="scaling" style="margin-top:0">Scaling events</h3>
${eventItems ? `<ol class="events" id="scaling-events" reversed>${eventItems}</ol>` : '<p class="muted" id="scaling-events">No scaling events in the last 24 hours.</p>'}</section>
</div>
<h2>Queue <span class="muted">(${queue.length} waiting)</span></h2>
${queue.length ? `<table id="queue"><thead><tr><th>#</th><th>user</th><th>profile</th><th>waiting</th><th>why</th></tr></thead><tbody>${queueRows}</tbody></table>` : '<p class="muted" id="queue">Nobody is waiting for an instance.</p>'}`;
    return c.html(page('Admin', body, who.user, 'admin'));
  });
  return routes;
}
