import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { MetricsSettings } from '../../../shared/config/schema.js';
import { GatewayError, writeError } from '../../../shared/errors.js';
import { isPrimaryToWorker, snapshotOf, type WorkerToPrimary } from '../../../shared/messages.js';
import type { WorkerMetrics } from './worker-metrics.js';

/*
 * The worker's side of cluster-wide metrics. The primary owns the merged view: it asks each
 * worker for its registry (`portico:metrics-collect`), and a `GET /metrics` that lands on a
 * worker is forwarded to it (`portico:metrics-scrape`), so whichever worker accepted the
 * connection, the scraper sees the whole cluster, never one random worker.
 */

/** The primary collects with its own 2 s bound; this only guards against a lost reply. */
const SCRAPE_TIMEOUT_MS = 5_000;
const UNAVAILABLE = new GatewayError('PORTICO_ERR_METRICS_UNAVAILABLE');
const NOT_ALLOWED = new GatewayError('PORTICO_ERR_METHOD_NOT_ALLOWED', { headers: { allow: 'GET, HEAD' } });

export interface MetricsExposition {
  /** True when `url` (raw request target) is the metrics path, with or without a query. */
  matches(url: string): boolean;
  serve(req: IncomingMessage, res: ServerResponse): void;
  /** Sends this worker's last counts to the primary (drain), then stops listening. */
  close(): Promise<void>;
}

export function createMetricsExposition(
  settings: MetricsSettings,
  metrics: WorkerMetrics,
  logger: Logger,
): MetricsExposition {
  const path = settings.path;
  const length = path.length;
  const registry = metrics.instruments.registry;
  const pending = new Map<number, { res: ServerResponse; timer: NodeJS.Timeout }>();
  let nextId = 0;

  const snapshot = () => snapshotOf(registry);
  const send = (message: WorkerToPrimary) =>
    new Promise<void>((resolve) => {
      if (!process.send || !process.connected) {
        resolve();
        return;
      }
      process.send(message, undefined, undefined, () => resolve());
    });

  function answer(res: ServerResponse, status: number, contentType: string, text: string): void {
    if (res.destroyed || res.headersSent) return;
    res.writeHead(status, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(text),
      'cache-control': 'no-store',
    });
    res.end(res.req.method === 'HEAD' ? undefined : text);
  }

  function onMessage(message: unknown): void {
    if (!isPrimaryToWorker(message)) return;
    if (message.type === 'portico:metrics-collect') {
      snapshot().then(
        (metrics) => send({ type: 'portico:metrics-snapshot', id: message.id, metrics }),
        (err: unknown) => logger.warn({ err }, 'metrics snapshot failed'),
      );
    } else if (message.type === 'portico:metrics-text') {
      const waiting = pending.get(message.id);
      if (!waiting) return;
      pending.delete(message.id);
      clearTimeout(waiting.timer);
      if ('text' in message) answer(waiting.res, 200, message.contentType, message.text);
      else {
        logger.warn({ reason: message.error }, 'cluster metrics unavailable');
        writeError(waiting.res, UNAVAILABLE);
      }
    }
  }
  process.on('message', onMessage);

  return {
    matches(url) {
      return url.startsWith(path) && (url.length === length || url.charCodeAt(length) === 63); /* '?' */
    },
    serve(req, res) {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        writeError(res, NOT_ALLOWED);
        return;
      }
      if (!process.send) {
        // Not under a cluster primary (embedded use): this worker's registry is the whole view.
        registry.metrics().then(
          (text) => answer(res, 200, registry.contentType, text),
          () => writeError(res, UNAVAILABLE),
        );
        return;
      }
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        writeError(res, UNAVAILABLE);
      }, SCRAPE_TIMEOUT_MS);
      pending.set(id, { res, timer });
      res.once('close', () => {
        clearTimeout(timer);
        pending.delete(id);
      });
      void send({ type: 'portico:metrics-scrape', id });
    },
    async close() {
      process.off('message', onMessage);
      for (const { timer } of pending.values()) clearTimeout(timer);
      pending.clear();
      // A graceful exit hands over its final counts, so cluster counters stay exact.
      await send({ type: 'portico:metrics-snapshot', id: null, metrics: await snapshot() });
    },
  };
}
