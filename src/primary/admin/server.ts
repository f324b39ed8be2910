import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { GatewayError, toGatewayError, writeError } from '../../shared/errors.js';
import { requestIdOf } from '../../shared/request-id.js';
import { cannotListen, formatAddress, StartupError } from '../../shared/startup-error.js';
import { bearerCheck } from './token.js';

/** What an endpoint answers: JSON (status 200 unless given), or text such as metrics. */
export type AdminAnswer =
  | { status?: number; json: unknown }
  | { text: string; contentType: string; headers?: Readonly<Record<string, string>> };

/**
 * One endpoint of the admin listener. Everything under `/admin/` needs `admin.token` when
 * one is set; the rest (health, readiness, metrics) is open. A GET endpoint answers HEAD too.
 * Throwing a `GatewayError` answers it from the error table.
 */
export interface AdminEndpoint {
  method: 'GET' | 'POST';
  path: string;
  handle(req: IncomingMessage): AdminAnswer | Promise<AdminAnswer>;
}

export interface AdminListenerOptions {
  host: string;
  port: number;
  token?: string | undefined;
  /** The config key a listen failure names (the deprecated alias when that set the port). */
  setting: string;
  /**
   * `metrics.prometheus.path` in force (read per request: a reload may change it), answered
   * like `/metrics`: scrapers of the old metrics-only listener were pointed at it.
   */
  metricsPath?: () => string | undefined;
}

const NOT_FOUND = new GatewayError('PORTICO_ERR_NOT_FOUND');
const UNAUTHORIZED = { headers: { 'www-authenticate': 'Bearer realm="portico-admin"' } };
const MISSING_TOKEN = new GatewayError('PORTICO_ERR_MISSING_TOKEN', UNAUTHORIZED);
const INVALID_TOKEN = new GatewayError('PORTICO_ERR_INVALID_TOKEN', UNAUTHORIZED);

/** Answers that say what state the instance is in, not that something failed. */
const EXPECTED_503 = new Set(['PORTICO_ERR_NOT_READY', 'PORTICO_ERR_SHUTTING_DOWN']);

const isProtected = (path: string) => path === '/admin' || path.startsWith('/admin/');

/** Paths → methods → endpoint, with each path's 405 answer made once. */
function routeTable(endpoints: readonly AdminEndpoint[]) {
  const table = new Map<string, { byMethod: Map<string, AdminEndpoint>; notAllowed: GatewayError }>();
  for (const endpoint of endpoints) {
    const byMethod = table.get(endpoint.path)?.byMethod ?? new Map<string, AdminEndpoint>();
    if (!byMethod.has(endpoint.method)) byMethod.set(endpoint.method, endpoint);
    if (endpoint.method === 'GET' && !byMethod.has('HEAD')) byMethod.set('HEAD', endpoint);
    const allow = [...byMethod.keys()].sort().join(', ');
    table.set(endpoint.path, {
      byMethod,
      notAllowed: new GatewayError('PORTICO_ERR_METHOD_NOT_ALLOWED', { headers: { allow } }),
    });
  }
  return table;
}

function writeAnswer(req: IncomingMessage, res: ServerResponse, answer: AdminAnswer): void {
  const [status, body, contentType] =
    'json' in answer
      ? [answer.status ?? 200, JSON.stringify(answer.json), 'application/json; charset=utf-8']
      : [200, answer.text, answer.contentType];
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...('headers' in answer ? answer.headers : undefined),
  });
  res.end(req.method === 'HEAD' ? undefined : body);
}

/**
 * The primary's admin listener. It lives in the primary, apart from the traffic port, so
 * probes and scrapes never compete with requests for a worker and keep answering while
 * workers restart. Rejects with a `StartupError` naming `admin.port` when it cannot listen.
 */
export async function startAdminListener(
  options: AdminListenerOptions,
  endpoints: readonly AdminEndpoint[],
  logger: Logger,
): Promise<Server> {
  const table = routeTable(endpoints);
  const check = options.token === undefined ? undefined : bearerCheck(options.token);
  const server = createServer((req, res) => {
    res.setHeader('x-request-id', requestIdOf(req.headers));
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q === -1 ? url : url.slice(0, q);
    // Before the lookup, so an unauthenticated caller cannot learn which endpoints exist.
    if (check && isProtected(path)) {
      const verdict = check(req.headers.authorization);
      if (verdict !== 'ok') {
        writeError(res, verdict === 'missing' ? MISSING_TOKEN : INVALID_TOKEN);
        return;
      }
    }
    const entry = table.get(path) ?? (path === options.metricsPath?.() ? table.get('/metrics') : undefined);
    if (entry === undefined) {
      writeError(res, NOT_FOUND);
      return;
    }
    const endpoint = entry.byMethod.get(req.method ?? '');
    if (endpoint === undefined) {
      writeError(res, entry.notAllowed);
      return;
    }
    Promise.resolve()
      .then(() => endpoint.handle(req))
      .then(
        (answer) => writeAnswer(req, res, answer),
        (err: unknown) => {
          const error = toGatewayError(err);
          if (error.status >= 500 && !EXPECTED_503.has(error.code))
            logger.warn({ err: error.cause ?? error, path }, 'admin endpoint failed');
          writeError(res, error);
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
          cannotListen(options.host, options.port, err.code, options.setting),
          { cause: err },
        ),
      );
    });
    server.listen(options.port, options.host, () => resolve());
  });
  return server;
}

/** `http://127.0.0.1:9901`, with an IPv6 host in brackets. */
export function urlOf(host: string, port: number): string {
  return `http://${formatAddress(host, port)}`;
}
