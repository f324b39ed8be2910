import { Counter, Registry } from 'prom-client';
import { collectProcessMetrics } from '../../shared/process-metrics.js';

/** The primary's own registry: restarts, and the primary's process metrics. */
export function createPrimaryInstruments() {
  const registry = new Registry();
  const restarts = new Counter({
    name: 'gateway_worker_restarts_total',
    help: 'Workers that died (crash, kill, or exit outside shutdown) and were respawned.',
    registers: [registry],
  });
  collectProcessMetrics(registry, 'primary');
  return { registry, restarts };
}
