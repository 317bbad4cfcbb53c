/**
 * The gateway: dspool's HTTP and WebSocket front door. It proxies `/hub/*` to the hub and `/user/<name>/*` to
 * that user's Jupyter server, authenticating each request with identities from the hub, refusing foreign
 * origins for cookie-authenticated requests, and injecting the server's token so it never reaches a browser.
 * Its route table and identity cache live in memory, fed by a WebSocket link to the hub, so a hub restart drops
 * no proxied connection. (The SSH front door lives in `./ssh/`.)
 *
 * @example
 * import { createGateway } from './gateway/index.js';
 *
 * const gateway = createGateway({
 *   host: config.gateway.host,
 *   port: config.gateway.port,
 *   hubUrl: `http://127.0.0.1:${hubPort}`,
 *   secret: await readFile(join(dataDir, GATEWAY_SECRET_FILE), 'utf8'),
 *   allowedOrigins: config.gateway.allowedOrigins,
 *   log: createLogger('gateway', config.log.level),
 * });
 * const { port } = await gateway.listen();
 * process.once('SIGTERM', () => void gateway.close());
 *
 * @module
 */
export { createGateway, type Gateway, type GatewayAddress, type GatewayState } from './gateway.js';
export { resolveGatewayOptions, type GatewayOptions, type ResolvedGatewayOptions } from './options.js';
export { HubLink, resolveHubLinkOptions, type HubLinkOptions, type HubLinkState, type HubLinkEvents, type ResolvedHubLinkOptions, type ResolvedRoute } from './hub-link.js';
export { AuthCache, type AuthCacheLimits, type CredentialKind } from './auth-cache.js';
export {
  GatewayError,
  HubUnavailableError,
  InvalidStateError,
  GatewayCloseError,
  GATEWAY_ERROR_STATUS,
  type GatewayErrorCode,
} from './errors.js';
