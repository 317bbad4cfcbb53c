/**
 * The autoscaler: sizes the pool by schedule (profiles), metric rules (Azure autoscale's model) and demand
 * (queued requests, intents, warm free slots), down to zero, draining and never killing. The engine is pure
 * (`Autoscaler`, a clock and a metrics source injected); `AutoscaleController` runs it in the hub; the simulator
 * replays a trace through the same engine and placement code on a virtual clock.
 *
 * @example
 * import { Autoscaler, autoscaleSettings } from './autoscale/index.js';
 * const scaler = new Autoscaler(autoscaleSettings(config), { snapshot: () => poolSnapshot }, { now: () => Date.now() });
 * const decision = scaler.tick(); // { from: 0, to: 1, direction: 'out', cause: 'demand', reason: '1 queued, …' }
 * @module
 */
export { Autoscaler, actionTarget, metricValues, scaleInOrder } from './engine.js';
export type { Clock, Decision, InstanceSnapshot, MetricsSource, PoolSnapshot, RuleEvaluation } from './engine.js';
export { AutoscaleController } from './controller.js';
export type { AutoscaleControllerContext, AutoscaleControllerState, IntentKind, SizePoint } from './controller.js';
export { autoscaleSettings } from './options.js';
export type { Action, AutoscaleSettings, Profile, Rule, ScaleInPolicy, Trigger } from './options.js';
export { activeProfile } from './schedule.js';
export { freeSlots } from './slots.js';
