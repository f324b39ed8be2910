import cluster, { type Worker } from 'node:cluster';
import { metricsSettings } from '../../shared/config/settings.js';
import { GatewayError } from '../../shared/errors.js';
import { isWorkerToPrimary, type PrimaryToWorker } from '../../shared/messages.js';
import type { AdminEndpoint } from '../admin/server.js';
import type { PrimaryService } from '../services.js';

/**
 * Cluster-wide Prometheus metrics: merges the workers' registries (see `ClusterMetrics`),
 * serves them on the admin listener (`GET /metrics`), answers workers that were asked for `GET /metrics` on
 * the gateway port, and counts worker restarts.
 */
export const metricsService: PrimaryService = {
  name: 'metrics',
  async start({ config, plan, logger, upstreams }) {
    const settings = metricsSettings(config);
    if (!settings) return undefined;
    // Loaded only when metrics are on: prom-client costs start-up time.
    const [{ ClusterMetrics }, { createPrimaryInstruments }] = await Promise.all([
      import('./cluster-metrics.js'),
      import('./instruments.js'),
    ]);
    const { registry, restarts, reloaded } = createPrimaryInstruments(plan.hash, upstreams);
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
    // `/metrics` as the admin API names it, and the configured gateway-port path too, which
    // scrapers of the old metrics-only listener were pointed at.
    const paths = new Set(['/metrics', settings.path]);
    return {
      workerDied() {
        restarts.inc();
      },
      reloaded({ result, hash, at }) {
        reloaded(result, hash, Date.parse(at));
      },
      endpoints: [...paths].map((path) => ({ method: 'GET', path, handle: scrape })),
      close() {
        cluster.off('message', onMessage);
        cluster.off('exit', onExit);
        return Promise.resolve();
      },
    };
  },
};
