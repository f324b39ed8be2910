import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { RoutePlan } from '../../shared/plan/types.js';
import type { UpstreamObserver } from '../proxy/forwarder.js';
import type { WorkerResources } from '../resources.js';
import type { ObservationHooks } from './hooks.js';

/** Handles one request. May be sync or async; a throw or rejection becomes a JSON error. */
export type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/**
 * Wraps the next handler. The first middleware listed on a route is the outermost.
 *
 * @example
 * const timing: Middleware = (next) => async function timing(req, res) {
 *   const start = performance.now();
 *   await next(req, res);
 *   console.log(req.url, performance.now() - start);
 * };
 */
export type Middleware = (next: Handler) => Handler;

/** Which route a chain is built for; a built-in's own settings come as its own argument. */
export type RouteIdentity = Pick<RoutePlan, 'path' | 'methods' | 'target' | 'upstream' | 'middleware'>;

/**
 * What every middleware factory gets when a route's chain is built (once per handler tree);
 * a built-in also gets its own slice of the plan (see registry.ts).
 */
export interface MiddlewareEnv {
  route: RouteIdentity;
  logger: Logger;
  /** Per-worker shared resources and drain hooks. */
  resources: WorkerResources;
  /** Where built-ins report what they observe (metrics). */
  hooks: ObservationHooks;
  /** The route's upstream exchanges: register an observer once here (metrics, tracing). */
  upstream: { observe(observer: UpstreamObserver): void };
}

/** Builds a route's instance of a middleware; validate options here, not per request. */
export type MiddlewareFactory = (env: MiddlewareEnv) => Middleware | Promise<Middleware>;
