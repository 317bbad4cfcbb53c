/**
 * Contracts between processes: hub ↔ agent and hub ↔ gateway messages, and the gateway → agent TLS relay, typed
 * once and imported by both sides.
 *
 * @example
 * import { agentMessageSchema } from './protocol/index.js';
 * const message = agentMessageSchema.parse(JSON.parse(frame));
 * @module
 */
export * as agentProtocol from './agent.js';
export * as gatewayProtocol from './gateway.js';
export * as relayProtocol from './relay.js';
