import { Counter, Gauge, Registry } from 'prom-client';
import { collectProcessMetrics } from '../../shared/process-metrics.js';
import type { ReloadRecord } from './reload-record.js';

/** The primary's own registry: restarts, reloads, and the primary's process metrics. */
export function createPrimaryInstruments(reloads: ReloadRecord) {
  const registry = new Registry();
  const restarts = new Counter({
    name: 'gateway_worker_restarts_total',
    help: 'Workers that died (crash, kill, or exit outside shutdown) and were respawned.',
    registers: [registry],
  });
  registerReloadMetrics(registry, reloads);
  collectProcessMetrics(registry, 'primary');
  return { registry, restarts };
}

/** Only the reload metrics: what the admin listener's `/metrics` serves when metrics are off. */
export function createReloadRegistry(reloads: ReloadRecord): Registry {
  const registry = new Registry();
  registerReloadMetrics(registry, reloads);
  return registry;
}

/** The `portico_config_*` metrics, read from `reloads` at each scrape. */
function registerReloadMetrics(registry: Registry, reloads: ReloadRecord): void {
  new Counter({
    name: 'portico_config_reloads_total',
    help: 'Config reloads, by result (success, failure, unchanged).',
    labelNames: ['result'],
    registers: [registry],
    collect() {
      // Every result from the start, at 0, so rate() and alerts see the series before the first.
      this.reset();
      for (const [result, count] of Object.entries(reloads.counts)) this.inc({ result }, count);
    },
  });
  new Gauge({
    name: 'portico_config_last_reload_successful',
    help: '0 when the last reload was refused, else 1 (the start, a reload applied or unchanged).',
    registers: [registry],
    collect() {
      this.set(reloads.lastSuccessful ? 1 : 0);
    },
  });
  new Gauge({
    name: 'portico_config_last_reload_success_timestamp_seconds',
    help: 'Unix time the config in force was applied (the start, or the last successful reload).',
    registers: [registry],
    collect() {
      this.set(reloads.lastSuccessAt / 1000);
    },
  });
  new Gauge({
    name: 'portico_config_info',
    help: 'The config in force: 1 for its hash.',
    labelNames: ['hash'],
    registers: [registry],
    collect() {
      this.reset();
      this.set({ hash: reloads.hash }, 1);
    },
  });
}
