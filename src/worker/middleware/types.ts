import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config, RouteConfig } from '../../shared/config/schema.js';
import type { UpstreamObserver } from '../proxy/forwarder.js';
import type { WorkerResources } from '../resources.js';

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

/** What a middleware factory gets when a route's chain is built (once, at start-up). */
export interface MiddlewareEnv {
  config: Config;
  route: RouteConfig;
  logger: Logger;
  /** Per-worker shared resources and drain hooks. */
  resources: WorkerResources;
  /** Directory of the config file, for settings that name files relative to it. */
  configDir: string;
  /** The route's upstream exchanges: register an observer once here (metrics, tracing). */
  upstream: { observe(observer: UpstreamObserver): void };
}

/** Builds a route's instance of a middleware; validate options here, not per request. */
export type MiddlewareFactory = (env: MiddlewareEnv) => Middleware | Promise<Middleware>;
