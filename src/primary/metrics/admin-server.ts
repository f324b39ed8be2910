import { createServer, type Server } from 'node:http';
import type { Logger } from 'pino';
import { GatewayError, writeError } from '../../shared/errors.js';
import { requestIdOf } from '../../shared/request-id.js';
import { cannotListen, StartupError } from '../../shared/startup-error.js';
import type { ClusterMetrics } from './cluster-metrics.js';

const NOT_FOUND = new GatewayError('PORTICO_ERR_NOT_FOUND');
const NOT_ALLOWED = new GatewayError('PORTICO_ERR_METHOD_NOT_ALLOWED', { headers: { allow: 'GET, HEAD' } });
const UNAVAILABLE = new GatewayError('PORTICO_ERR_METRICS_UNAVAILABLE');

/**
 * The primary's admin listener: `GET {path}` answers the cluster-wide metrics. It lives in the
 * primary, apart from the traffic port, so a scrape never competes with requests for a
 * worker and keeps answering while workers restart.
 */
export async function startAdminServer(
  metrics: ClusterMetrics,
  options: { host: string; port: number; path: string },
  logger: Logger,
): Promise<Server> {
  const server = createServer((req, res) => {
    res.setHeader('x-request-id', requestIdOf(req.headers));
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    if ((q === -1 ? url : url.slice(0, q)) !== options.path) {
      writeError(res, NOT_FOUND);
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      writeError(res, NOT_ALLOWED);
      return;
    }
    metrics.collect().then(
      (text) => {
        res.writeHead(200, {
          'content-type': metrics.contentType,
          'content-length': Buffer.byteLength(text),
          'cache-control': 'no-store',
        });
        res.end(req.method === 'HEAD' ? undefined : text);
      },
      (err: unknown) => {
        logger.warn({ err }, 'metrics collection failed');
        writeError(res, UNAVAILABLE);
      },
    );
  });
  server.keepAliveTimeout = 65_000; // longer than a scraper's interval, so it reuses the connection
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => {
      logger.error(
        { host: options.host, port: options.port, code: err.code, error_code: 'PORTICO_ERR_LISTEN' },
        'cannot listen; stopping',
      );
      reject(
        new StartupError(
          'PORTICO_ERR_LISTEN',
          cannotListen(options.host, options.port, err.code, 'metrics.prometheus.port'),
          { cause: err },
        ),
      );
    });
    server.listen(options.port, options.host, () => resolve());
  });
  logger.info({ host: options.host, port: options.port, path: options.path }, 'metrics admin listener ready');
  return server;
}
