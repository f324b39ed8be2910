import { Counter, Gauge, Registry } from 'prom-client';
import { collectProcessMetrics } from '../../shared/process-metrics.js';
import type { Plan } from '../../shared/plan/types.js';
import type { FailureKind } from '../../shared/upstream-messages.js';
import { registerTlsMetrics } from './tls-metrics.js';
import { dnsFailures } from '../upstreams/dns-failures.js';
import type { UpstreamHealthSource } from '../upstreams/registry.js';
import type { ReloadRecord } from './reload-record.js';

const FAILURE_KINDS: readonly FailureKind[] = ['connect_failure', 'reset', 'timeout', '5xx'];

/** The primary's own registry: restarts, reloads, upstream health, and the primary's process metrics. */
export function createPrimaryInstruments(
  reloads: ReloadRecord,
  upstreams: UpstreamHealthSource,
  inForce?: () => Plan,
) {
  const registry = new Registry();
  const restarts = new Counter({
    name: 'gateway_worker_restarts_total',
    help: 'Workers that died (crash, kill, or exit outside shutdown) and were respawned.',
    registers: [registry],
  });
  registerReloadMetrics(registry, reloads);
  registerUpstreamMetrics(registry, upstreams);
  if (inForce !== undefined) registerTlsMetrics(registry, inForce);
  collectProcessMetrics(registry, 'primary');
  return { registry, restarts };
}

/** Read from the registry at each scrape: the pools in force, so a stopped pool's series go. */
function registerUpstreamMetrics(registry: Registry, upstreams: UpstreamHealthSource): void {
  new Gauge({
    name: 'portico_upstream_endpoint_healthy',
    help: 'Whether an upstream endpoint is in use: 1 when healthy, 0 when unhealthy, ejected or not checked yet.',
    labelNames: ['upstream', 'endpoint'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { plan, endpoints } of upstreams.inForce())
        for (const e of endpoints)
          this.set({ upstream: plan.name, endpoint: e.id }, e.state === 'healthy' ? 1 : 0);
    },
  });
  new Counter({
    name: 'portico_upstream_ejections_total',
    help: "Ejections of an upstream endpoint decided from the workers' outlier reports, by the failure reported.",
    labelNames: ['upstream', 'endpoint', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const { plan, endpoints } of upstreams.inForce()) {
        if (plan.outlier.consecutiveFailures === 0) continue;
        for (const e of endpoints) {
          const counts = upstreams.ejections(plan.name, e.id);
          // Every reason from 0, so rate() sees the first ejection.
          for (const reason of FAILURE_KINDS)
            this.inc({ upstream: plan.name, endpoint: e.id, reason }, counts?.get(reason) ?? 0);
        }
      }
    },
  });
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
