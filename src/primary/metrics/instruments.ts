import { dnsFailures } from '../upstreams/dns-failures.js';
import { Counter, Gauge, Registry } from 'prom-client';
import { collectProcessMetrics } from '../../shared/process-metrics.js';

/** The primary's own registry: restarts, reloads, and the primary's process metrics. */
export function createPrimaryInstruments(activeHash: string) {
  const registry = new Registry();
  const restarts = new Counter({
    name: 'gateway_worker_restarts_total',
    help: 'Workers that died (crash, kill, or exit outside shutdown) and were respawned.',
    registers: [registry],
  });
  const reloads = new Counter({
    name: 'portico_config_reloads_total',
    help: 'Config reloads, by result (success, failure, unchanged).',
    labelNames: ['result'],
    registers: [registry],
  });
  // Every result at 0 from the start, so rate() and alerts see the series before the first one.
  for (const result of ['success', 'failure', 'unchanged']) reloads.inc({ result }, 0);
  new Counter({
    name: 'portico_upstream_dns_failures_total',
    help: 'Resolutions of an upstream target (hostname or SRV name) that failed or came back empty; the last good answer stays in use.',
    labelNames: ['upstream', 'target'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { upstream, target, count } of dnsFailures()) this.inc({ upstream, target }, count);
    },
  });
  const lastSuccessful = new Gauge({
    name: 'portico_config_last_reload_successful',
    help: '0 when the last reload was refused, else 1 (the start, a reload applied or unchanged).',
    registers: [registry],
  });
  lastSuccessful.set(1);
  const lastSuccess = new Gauge({
    name: 'portico_config_last_reload_success_timestamp_seconds',
    help: 'Unix time the config in force was applied (the start, or the last successful reload).',
    registers: [registry],
  });
  lastSuccess.set(Date.now() / 1000);
  const info = new Gauge({
    name: 'portico_config_info',
    help: 'The config in force: 1 for its hash.',
    labelNames: ['hash'],
    registers: [registry],
  });
  info.set({ hash: activeHash }, 1);
  collectProcessMetrics(registry, 'primary');
  return {
    registry,
    restarts,
    /** Records a reload's outcome. */
    reloaded: (result: 'success' | 'failure' | 'unchanged', hash: string, at: number): void => {
      reloads.inc({ result });
      // Unchanged content is the config in force: the file on disk is fine again.
      lastSuccessful.set(result === 'failure' ? 0 : 1);
      if (result !== 'success') return;
      lastSuccess.set(at / 1000);
      info.reset();
      info.set({ hash }, 1);
    },
  };
}
