import { collectDefaultMetrics, type Registry } from 'prom-client';

/*
 * prom-client's gauges of the same counts by another name: `promtool check metrics` rejects a
 * gauge named `*_total` (that suffix promises a counter), and the per-type gauges without the
 * suffix (`nodejs_active_handles{type}`…) carry the same information.
 */
const MISNAMED_GAUGES = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

/**
 * Node's default process metrics (CPU, memory, event-loop lag, GC, handles) for one process,
 * labelled `worker` (the worker's slot, or `primary`) so each process's series stay apart
 * when the primary merges the registries.
 */
export function collectProcessMetrics(registry: Registry, worker: string): void {
  collectDefaultMetrics({ register: registry, labels: { worker } });
  for (const name of MISNAMED_GAUGES) registry.removeSingleMetric(name);
}
