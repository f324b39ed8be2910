import type { WorkerResources } from '../../resources.js';
import { observeRateLimit } from '../ratelimit/observer.js';
import type { WorkerMetrics } from './worker-metrics.js';

export type RateLimitDecision = 'allowed' | 'limited' | 'store_error';

/**
 * What other built-ins record, through `metricsRecorder(env.resources)` in their factory.
 * Calls are cheap (pre-bound children) and are no-ops when metrics are off, so callers
 * never check.
 *
 * @example
 * const metrics = metricsRecorder(env.resources); // once, in the middleware factory
 * metrics.rateLimitDecision('limited');             // per request
 * metrics.rateLimitStoreUp('redis', false);          // on a store transition
 */
export interface MetricsRecorder {
  rateLimitDecision(decision: RateLimitDecision): void;
  /** `reason` must come from a fixed vocabulary (e.g. `missing_token`, `expired`, `bad_signature`). */
  authFailure(reason: string): void;
  /** Store state (e.g. `redis`): call on transitions, not per request. */
  rateLimitStoreUp(store: string, up: boolean): void;
}

const NOOP: MetricsRecorder = {
  rateLimitDecision() {},
  authFailure() {},
  rateLimitStoreUp() {},
};

const KEY = 'portico.metrics';
type Holder = { metrics: WorkerMetrics | undefined };
const holder = (resources: WorkerResources) => resources.shared<Holder>(KEY, () => ({ metrics: undefined }));

/**
 * Creates this worker's metrics (once, at worker start, when metrics are on). prom-client is
 * loaded here, not at import, so a gateway without metrics does not pay for it.
 */
export async function installWorkerMetrics(
  resources: WorkerResources,
  workerLabel: string,
): Promise<WorkerMetrics> {
  const slot = holder(resources);
  if (!slot.metrics) {
    const { WorkerMetrics } = await import('./worker-metrics.js');
    const metrics = new WorkerMetrics(workerLabel);
    slot.metrics = metrics;
    observeRateLimit(resources, {
      decision: (_route, outcome) => metrics.rateLimitDecision(outcome),
      storeState: (store, state) => metrics.rateLimitStoreUp(store, state === 'up'),
    });
  }
  return slot.metrics;
}

/** This worker's metrics, or `undefined` when metrics are off. */
export function workerMetricsOf(resources: WorkerResources): WorkerMetrics | undefined {
  return holder(resources).metrics;
}

/** The recorder for other built-ins (rate limiting, auth); a no-op when metrics are off. */
export function metricsRecorder(resources: WorkerResources): MetricsRecorder {
  return workerMetricsOf(resources) ?? NOOP;
}
