import type { RouteMetrics } from './metrics/worker-metrics.js';

export type RateLimitDecision = 'allowed' | 'limited' | 'store_error';

/**
 * What the built-ins report as they work, in one typed object made once per worker before
 * any chain is built (so no built-in depends on another being built first). With metrics on
 * it is the worker's `WorkerMetrics` itself (no indirection on the request path); off, every
 * call is a no-op, so callers never check.
 *
 * @example
 * const limited = hooks.rateLimitCounter('limited', 'burst'); // once, when a route is built
 * limited();                                                   // per request, in `ratelimit`
 * hooks.rateLimitStoreUp('redis', false);  // on a store transition
 */
export interface ObservationHooks {
  /** The request instruments of a route pattern; `undefined` when metrics are off. */
  route(path: string): RouteMetrics | undefined;
  /**
   * Counts one decision per call. Resolved when a route is built, so the request path only
   * calls it. `policy`: the policy that refused (`burst`, a quota's period, `ban`), else `all`.
   */
  rateLimitCounter(decision: RateLimitDecision, policy: string): () => void;
  /** Store state (e.g. `redis`): called on transitions, not per request. */
  rateLimitStoreUp(store: string, up: boolean): void;
  /** `portico_redis_up{role}`: on transitions only. */
  redisUp(role: 'master' | 'sentinel', up: boolean): void;
  /** `portico_redis_failovers_total`. */
  redisFailover(): void;
  /** `reason` comes from a fixed vocabulary (e.g. `missing_token`, `expired`, `bad_signature`). */
  authFailure(reason: string): void;
}

export const NO_HOOKS: ObservationHooks = {
  route: () => undefined,
  rateLimitCounter: () => () => {},
  rateLimitStoreUp() {},
  redisUp() {},
  redisFailover() {},
  authFailure() {},
};
