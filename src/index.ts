export { type ConfigSource, createGateway, Gateway } from './gateway.js';
export { ConfigError } from './shared/config/errors.js';
export type { Config, RouteConfig } from './shared/config/schema.js';
export { ERRORS, type ErrorCode, GatewayError, PorticoError } from './shared/errors.js';
export {
  claimsOf,
  type ClientCertificate,
  contextOf,
  paramsOf,
  type RequestContext,
} from './worker/context.js';
export {
  type Claims,
  type TokenVerifier,
  type VerifierFactory,
  VerifierUnavailableError,
} from './worker/middleware/auth/verifier.js';
export { serverSpanOf } from './worker/middleware/tracing/middleware.js';
export type { Handler, Middleware, MiddlewareEnv, MiddlewareFactory } from './worker/middleware/types.js';
export type { WorkerResources } from './worker/resources.js';
