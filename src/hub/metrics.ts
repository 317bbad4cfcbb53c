// The hub's Prometheus metrics (`GET /hub/metrics`): instances by state, sessions, the wait queue, placement
// latency, heartbeat age, repairs, and the proxy counters gateways report.
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { InstancePool } from './instances/pool.js';
import { INSTANCE_STATES } from './instances/state.js';
import type { PlacementObserver, SessionManager } from './sessions/manager.js';

/** What the metrics read on each scrape. */
export interface HubMetricsContext {
  readonly pool: Pick<InstancePool, 'list' | 'heartbeatAges' | 'size'>;
  readonly sessions: Pick<SessionManager, 'queued' | 'countOn' | 'routes'> & { activeCount(): Record<string, number> };
}

/** Proxy counters a gateway reports (cumulative since the gateway started). */
export interface GatewayCounters {
  readonly requests: number;
  readonly errors: number;
}

/**
 * The hub's metrics registry. Gauges are computed at scrape time; placement and queue timings are observed as
 * they happen (`placement` is the `PlacementObserver` handed to the session manager).
 *
 * @example
 * const metrics = new HubMetrics();
 * metrics.attach({ pool, sessions });
 * const text = await metrics.render(); // Prometheus text format
 */
export class HubMetrics {
  readonly registry = new Registry();
  private ctx: HubMetricsContext | undefined;
  private readonly gateways = new Map<string, GatewayCounters>();
  private readonly placementSeconds = new Histogram({
    name: 'dspool_placement_decision_seconds',
    help: 'Time taken by one placement decision.',
    labelNames: ['outcome'],
    buckets: [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05],
    registers: [this.registry],
  });
  private readonly queueWaitSeconds = new Histogram({
    name: 'dspool_queue_wait_seconds',
    help: 'Time a request waited in the queue for room.',
    labelNames: ['outcome'],
    buckets: [0.1, 1, 5, 15, 60, 300, 900, 3600],
    registers: [this.registry],
  });
  /** Servers stopped, by who stopped them (`StopCause`): `idle` is a cull. */
  readonly stops = new Counter({
    name: 'dspool_sessions_stopped_total', help: 'Servers stopped, by cause: request, idle (culled for no work), drain (a drain deadline), shutdown.',
    labelNames: ['cause'], registers: [this.registry],
  });
  /** Repairs: instances failed and replaced. */
  readonly repairs = new Counter({ name: 'dspool_instance_repairs_total', help: 'Instances failed and replaced.', registers: [this.registry] });

  /** Observer for the session manager. */
  readonly placement: PlacementObserver = {
    decision: (ms, outcome) => this.placementSeconds.observe({ outcome }, ms / 1000),
    waited: (ms, outcome) => this.queueWaitSeconds.observe({ outcome }, ms / 1000),
  };

  constructor() {
    const self = this;
    new Gauge({
      name: 'dspool_instances', help: 'Instances by state.', labelNames: ['state'], registers: [this.registry],
      collect() {
        const counts = new Map<string, number>(INSTANCE_STATES.map((s) => [s, 0]));
        for (const view of self.ctx?.pool.list() ?? []) counts.set(view.state, (counts.get(view.state) ?? 0) + 1);
        for (const [state, n] of counts) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'dspool_pool_size', help: 'Instances the pool keeps running (pool.yaml pool.instances).', registers: [this.registry],
      collect() {
        this.set(self.ctx?.pool.size ?? 0);
      },
    });
    new Gauge({
      name: 'dspool_sessions', help: 'Active sessions by state.', labelNames: ['state'], registers: [this.registry],
      collect() {
        this.reset();
        for (const [state, n] of Object.entries(self.ctx?.sessions.activeCount() ?? {})) this.set({ state }, n);
      },
    });
    new Gauge({
      name: 'dspool_queue_length', help: 'Requests waiting for an instance with room.', registers: [this.registry],
      collect() {
        this.set(self.ctx?.sessions.queued().length ?? 0);
      },
    });
    new Gauge({
      name: 'dspool_queue_oldest_wait_seconds', help: 'How long the oldest queued request has waited.', registers: [this.registry],
      collect() {
        const queued = self.ctx?.sessions.queued() ?? [];
        this.set(queued.length > 0 ? Math.max(...queued.map((q) => q.waitedMs)) / 1000 : 0);
      },
    });
    new Gauge({
      name: 'dspool_instance_heartbeat_age_seconds', help: 'Seconds since each instance\'s last heartbeat.', labelNames: ['instance'],
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [instance, ageMs] of self.ctx?.pool.heartbeatAges() ?? []) this.set({ instance }, ageMs / 1000);
      },
    });
    new Gauge({
      name: 'dspool_instance_sessions', help: 'Sessions on each instance.', labelNames: ['instance'], registers: [this.registry],
      collect() {
        this.reset();
        for (const view of self.ctx?.pool.list() ?? []) this.set({ instance: view.id }, self.ctx?.sessions.countOn(view.id) ?? 0);
      },
    });
    new Gauge({
      name: 'dspool_gateway_proxy_requests', help: 'Requests proxied by gateways since they started (as last reported).',
      registers: [this.registry],
      collect() {
        this.set([...self.gateways.values()].reduce((sum, g) => sum + g.requests, 0));
      },
    });
    new Gauge({
      name: 'dspool_gateway_proxy_errors', help: 'Proxied requests that failed (backend unreachable, 5xx from the proxy) since gateways started.',
      registers: [this.registry],
      collect() {
        this.set([...self.gateways.values()].reduce((sum, g) => sum + g.errors, 0));
      },
    });
  }

  /** Connects the scrape-time gauges to the pool and sessions. */
  attach(ctx: HubMetricsContext): void {
    this.ctx = ctx;
  }

  /** Records the latest counters a gateway reported (`key` names the gateway connection); null forgets it. */
  gateway(key: string, counters: GatewayCounters | null): void {
    if (counters) this.gateways.set(key, counters);
    else this.gateways.delete(key);
  }

  /** Prometheus text exposition. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
