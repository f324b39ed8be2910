import { dashboardMetrics } from '../../dashboard-feed.js';
import { ResourceKind, type WorkerResources } from '../../resources.js';
import { type ObservationHooks, NO_HOOKS } from '../hooks.js';
import type { WorkerMetrics } from './worker-metrics.js';

const METRICS = new ResourceKind<Promise<WorkerMetrics>>('metrics', { retained: true });

/**
 * This worker's metrics (created on first call: one registry per worker, kept across
 * handler trees so counters never go backwards). prom-client is loaded here, not at
 * import, so a gateway without metrics does not pay for it.
 */
export function installWorkerMetrics(
  resources: WorkerResources,
  workerLabel: string,
): Promise<WorkerMetrics> {
  return resources.shared(METRICS, workerLabel, async () => {
    const [{ WorkerMetrics }, { LATENCY_BUCKETS }] = await Promise.all([
      import('./worker-metrics.js'),
      import('./instruments.js'),
    ]);
    const metrics = new WorkerMetrics(workerLabel);
    dashboardMetrics(metrics.instruments.registry, LATENCY_BUCKETS);
    return metrics;
  });
}

/** The hooks built-ins report through: the worker's metrics, or no-ops when metrics are off. */
export async function observationHooks(
  resources: WorkerResources,
  metricsOn: boolean,
  workerLabel: string,
): Promise<{ hooks: ObservationHooks; metrics: WorkerMetrics | undefined }> {
  if (!metricsOn) return { hooks: NO_HOOKS, metrics: undefined };
  const metrics = await installWorkerMetrics(resources, workerLabel);
  return { hooks: metrics, metrics };
}
