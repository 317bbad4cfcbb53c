/**
 * Contracts between processes: hub ↔ agent and hub ↔ gateway messages, typed once and imported by both sides.
 *
 * @example
 * import { agentMessageSchema } from './protocol/index.js';
 * const message = agentMessageSchema.parse(JSON.parse(frame));
 * @module
 */
export * as agentProtocol from './agent.js';
export * as gatewayProtocol from './gateway.js';
