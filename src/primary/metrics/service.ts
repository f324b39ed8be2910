import cluster, { type Worker } from 'node:cluster';
import type { Registry } from 'prom-client';
import { metricsSettings } from '../../shared/config/settings.js';
import { GatewayError } from '../../shared/errors.js';
import { isWorkerToPrimary, type PrimaryToWorker } from '../../shared/messages.js';
import type { AdminEndpoint } from '../admin/server.js';
import type { PrimaryService, RunningService } from '../services.js';
import { ReloadRecord } from './reload-record.js';

/**
 * Cluster-wide Prometheus metrics: merges the workers' registries (see `ClusterMetrics`),
 * serves them on the admin listener (`GET /metrics`), answers workers that were asked for `GET /metrics` on
 * the gateway port, and counts worker restarts and reloads. With metrics off, the admin
 * listener's `/metrics` still serves the reload metrics.
 */
export const metricsService: PrimaryService = {
  name: 'metrics',
  async start({ config, plan, logger, upstreams }) {
    const reloads = new ReloadRecord(plan.hash);
    const settings = metricsSettings(config);
    if (!settings) return reloadMetricsOnly(reloads);
    // Loaded only when metrics are on: prom-client costs start-up time.
    const [{ ClusterMetrics }, { createPrimaryInstruments }] = await Promise.all([
      import('./cluster-metrics.js'),
      import('./instruments.js'),
    ]);
    let inForce = plan;
    const { registry, restarts } = createPrimaryInstruments(reloads, upstreams, () => inForce);
    const metrics = new ClusterMetrics(registry, logger);

    const onMessage = (worker: Worker, message: unknown) => {
      if (!isWorkerToPrimary(message)) {
        // Ours but malformed: a bug, not noise from a library (prom-client's own messages).
        const type = (message as { type?: unknown } | null)?.type;
        if (typeof type === 'string' && type.startsWith('portico:metrics'))
          logger.warn({ type, worker: worker.id }, 'malformed metrics message ignored');
        return;
      }
      switch (message.type) {
        case 'portico:ready':
          metrics.ready(worker.id);
          break;
        case 'portico:metrics-snapshot':
          metrics.snapshot(worker.id, message.id, message.metrics);
          break;
        case 'portico:metrics-scrape': {
          const reply = (answer: PrimaryToWorker) => {
            if (worker.isConnected()) worker.send(answer);
          };
          metrics.collect().then(
            (text) =>
              reply({ type: 'portico:metrics-text', id: message.id, text, contentType: metrics.contentType }),
            (err: unknown) => reply({ type: 'portico:metrics-text', id: message.id, error: String(err) }),
          );
          break;
        }
      }
    };
    const onExit = (worker: Worker) => metrics.exited(worker.id);
    cluster.on('message', onMessage);
    cluster.on('exit', onExit);

    const scrape: AdminEndpoint['handle'] = async () => {
      try {
        return { text: await metrics.collect(), contentType: metrics.contentType };
      } catch (err) {
        throw new GatewayError('PORTICO_ERR_METRICS_UNAVAILABLE', { cause: err });
      }
    };
    return {
      workerDied() {
        restarts.inc();
      },
      reloaded(outcome) {
        reloads.record(outcome);
      },
      planApplied(next) {
        inForce = next;
      },
      // The admin listener also answers it at `metrics.prometheus.path` (see admin/index.ts).
      endpoints: [{ method: 'GET', path: '/metrics', handle: scrape }],
      close() {
        cluster.off('message', onMessage);
        cluster.off('exit', onExit);
        return Promise.resolve();
      },
    };
  },
};

/** Metrics off: `/metrics` on the admin listener serves the reload metrics alone. */
function reloadMetricsOnly(reloads: ReloadRecord): RunningService {
  // prom-client is loaded at the first scrape, not at start.
  let registry: Promise<Registry> | undefined;
  return {
    reloaded(outcome) {
      reloads.record(outcome);
    },
    endpoints: [
      {
        method: 'GET',
        path: '/metrics',
        async handle() {
          registry ??= import('./instruments.js').then((m) => m.createReloadRegistry(reloads));
          const loaded = await registry;
          return { text: await loaded.metrics(), contentType: loaded.contentType };
        },
      },
    ],
    close: () => Promise.resolve(),
  };
}
