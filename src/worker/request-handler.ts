import { type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { trustedProxyList } from '../shared/config/settings.js';
import { GatewayError, toGatewayError, writeError } from '../shared/errors.js';
import type { Plan } from '../shared/plan/types.js';
import { canonicalIp, clientIpOf, isTrusted } from './client-ip.js';
import { overConnectionLimit } from './connection-limit.js';
import { attachContext, type InternalContext, internalContextOf } from './context.js';
import { compose } from './middleware/compose.js';
import { createMetricsExposition, type MetricsExposition } from './middleware/metrics/exposition.js';
import { observationHooks } from './middleware/metrics/recorder.js';
import type { RouteMetrics } from './middleware/metrics/worker-metrics.js';
import type { MiddlewareRegistry } from './middleware/registry.js';
import type { Handler, Middleware } from './middleware/types.js';
import { decodeParam, normalizePath } from './path.js';
import { headRefusal } from './request-head.js';
import { requestIdOf } from '../shared/request-id.js';
import { createForwarder, type UpstreamObserver } from './proxy/forwarder.js';
import { setForwardedHeaders, stripHopByHop, stripNominated } from './proxy/headers.js';
import { compileUpstreamPath } from './proxy/upstream-path.js';
import { ResourceKind, type WorkerResources } from './resources.js';
import { type Router, TableRouter } from './router.js';
import type { EndpointDirectory } from './upstream/directory.js';
import { upstreamPools } from './upstream/pools.js';
import { setClientCertHeaders, stripClientCertHeaders, verifiedClientCert } from './tls/client-cert.js';

export interface GatewayHandlers {
  request(req: IncomingMessage, res: ServerResponse): void;
  upgrade(req: IncomingMessage, socket: Socket, head: Buffer): void;
  /** A `CONNECT` request: the gateway tunnels nothing, so it answers 405. */
  connect(req: IncomingMessage, socket: Socket): void;
  /** From now on responses close their connection (used while draining). */
  startDraining(): void;
  close(): void;
}

interface RouteRuntime {
  path: string;
  handler: Handler;
}

const EXPOSITION = new ResourceKind<MetricsExposition>('metrics exposition');

const UPGRADE_HEAD = Symbol('portico.upgradeHead');
type UpgradeRequest = IncomingMessage & { [UPGRADE_HEAD]?: Buffer };

const BAD_PATH = new GatewayError('PORTICO_ERR_BAD_PATH');
const NOT_FOUND = new GatewayError('PORTICO_ERR_NOT_FOUND');
// The target of a CONNECT is a host:port, and no method is served on it (RFC 9110 §10.2.1:
// an empty Allow means none).
const NO_TUNNEL = new GatewayError('PORTICO_ERR_METHOD_NOT_ALLOWED', { headers: { allow: '' } });
const TOO_MANY_CONNECTIONS = new GatewayError('PORTICO_ERR_TOO_MANY_CONNECTIONS', {
  headers: { 'retry-after': '1' },
});

/**
 * Builds everything a worker needs to serve requests from a plan, once: the router, each
 * route's middleware chain and its forwarder. The per-request work is then match → context
 * → chain. Per-worker resources (metrics registry, limiter, verifiers, tracer) come from
 * `resources`, keyed by their settings, so a second tree built beside this one from a new
 * plan reuses those whose settings did not change.
 */
export async function createGatewayHandlers(
  plan: Plan,
  registry: MiddlewareRegistry,
  logger: Logger,
  resources: WorkerResources,
  directory: EndpointDirectory,
  workerLabel = '0',
): Promise<GatewayHandlers> {
  const trusted =
    plan.server.trusted_proxies.length > 0 ? trustedProxyList(plan.server.trusted_proxies) : null;
  const forwarders: { close(): void }[] = [];
  let draining = false;

  // The hooks exist before any chain is built, so every factory can report through them.
  const { hooks, metrics } = await observationHooks(resources, plan.metrics !== null, workerLabel);
  // One per worker, not per tree: each listens to the primary's collection requests.
  const settings = plan.metrics;
  const exposition =
    settings && metrics
      ? resources.shared(EXPOSITION, JSON.stringify(settings), (own) => {
          const created = createMetricsExposition(settings, metrics, logger);
          own.onClose('metrics', () => created.close());
          return created;
        })
      : undefined;
  const unmatched: RouteMetrics | undefined = metrics?.unmatched;
  // Requests no route takes are logged when the config logs requests at all: `logging`
  // is per route, and these belong to none.
  const unmatchedLog = plan.routes.some((route) => route.middleware.includes('logging'))
    ? logger.child({ route: '(unmatched)' })
    : undefined;
  const maxHeaders = plan.server.max_headers;
  const connectionLimited = plan.server.max_connections > 0;
  // Issue 15: decided per plan, so a plain-HTTP request never looks for a certificate.
  const clientCerts = plan.serverTls !== null && plan.serverTls.clientAuth !== 'none';
  const forwardClientCert = clientCerts && plan.serverTls?.forwardClientCert === true;
  const pools = upstreamPools(plan, {
    resources,
    directory,
    logger,
    requests: metrics?.instruments.upstreamRequests,
    retryCounters: metrics && {
      retries: metrics.instruments.upstreamRetries,
      budgetExhausted: metrics.instruments.retryBudgetExhausted,
    },
    breaker: metrics?.instruments.breaker,
  });

  const routes: { path: string; methods?: string[]; value: RouteRuntime }[] = [];
  for (const route of plan.routes) {
    const pool = pools.get(route.upstream);
    // The plan names a pool for every route (checked where it is built).
    if (pool === undefined) throw new Error(`route ${route.path}: no upstream named ${route.upstream}`);
    const observers: UpstreamObserver[] = [];
    const upstream = { observe: (observer: UpstreamObserver) => void observers.push(observer) };
    const forwarder = createForwarder(
      { pool, timeoutMs: route.timeoutMs, maxBodySize: plan.server.max_body_size },
      logger,
      observers,
    );
    forwarders.push(forwarder);
    const upstreamPath = compileUpstreamPath(route.path, {
      rewrite: route.upstreamPath.rewrite ?? undefined,
      stripPrefix: route.upstreamPath.stripPrefix,
      basePath: route.upstreamPath.basePath,
    });
    const terminal: Handler = function forward(req, res) {
      const ctx = internalContextOf(req);
      req.url = upstreamPath(ctx.path, ctx.rawParams, ctx.rawRest) + ctx.query;
      const head = (req as UpgradeRequest)[UPGRADE_HEAD];
      if (head === undefined) forwarder.web(req, res);
      else forwarder.ws(req, res, head);
    };
    const chain: Middleware[] = [];
    const env = { route, logger, resources, hooks, upstream };
    for (const name of route.middleware) chain.push(await registry.build(name, route, plan, env));
    routes.push({
      path: route.path,
      ...(route.methods ? { methods: route.methods } : {}),
      value: { path: route.path, handler: compose(chain, terminal) },
    });
  }
  const router: Router<RouteRuntime> = new TableRouter(routes);

  function fail(err: unknown, res: ServerResponse): void {
    const error = toGatewayError(err);
    if (error.code === 'PORTICO_ERR_INTERNAL') logger.error({ err }, 'unhandled error in request chain');
    writeError(res, error);
  }

  /**
   * Answers a request no route takes (400/404/405/431), with a request id like any other
   * answer, counted under one `path` label value and logged under the route `(unmatched)`.
   */
  function refuse(req: IncomingMessage, res: ServerResponse, error: GatewayError, startedAt: number): void {
    const requestId = requestIdOf(req.headers);
    res.setHeader('x-request-id', requestId);
    if (draining) res.shouldKeepAlive = false;
    writeError(res, error);
    const seconds = (performance.now() - startedAt) / 1000;
    unmatched?.record(req.method ?? 'GET', error.status, seconds);
    if (unmatchedLog === undefined) return;
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    // The query string is left out, as in the `logging` middleware: it often carries tokens.
    unmatchedLog.info(
      {
        request_id: requestId,
        method: req.method,
        path: q === -1 ? url : url.slice(0, q),
        status: error.status,
        duration_ms: Math.round(seconds * 1_000_000) / 1000,
        client_ip: clientIpOfRequest(req),
      },
      'request',
    );
  }

  function clientIpOfRequest(req: IncomingMessage): string {
    const peer = canonicalIp(req.socket.remoteAddress ?? '');
    const xff = req.headers['x-forwarded-for'];
    return clientIpOf(peer, typeof xff === 'string' ? xff : undefined, trusted);
  }

  /**
   * A response on a socket Node has handed over (upgrade, CONNECT). Node no longer tracks
   * that connection, so an answer written on it (a refusal) must close it, as Node does
   * for `Connection: close`; else the client could hold it open for ever.
   */
  function socketResponse(req: IncomingMessage, socket: Socket): ServerResponse {
    socket.on('error', (err) => logger.debug({ err: err.message }, 'client socket error'));
    const res = new ServerResponse(req);
    res.assignSocket(socket);
    res.shouldKeepAlive = false;
    res.once('finish', () => socket.destroySoon());
    return res;
  }

  function dispatch(req: IncomingMessage, res: ServerResponse, upgrade: string | undefined): void {
    if (connectionLimited && overConnectionLimit(req.socket)) {
      // A connection beyond server.max_connections gets this one answer, then closes.
      res.shouldKeepAlive = false;
      refuse(req, res, TOO_MANY_CONNECTIONS, performance.now());
      return;
    }
    const refusal = headRefusal(req, maxHeaders);
    if (refusal !== undefined) {
      refuse(req, res, refusal, performance.now());
      return;
    }
    const url = req.url ?? '/';
    // The scrape path is served before routing and middleware: a scraper needs no token.
    if (exposition !== undefined && exposition.matches(url)) {
      if (draining) res.shouldKeepAlive = false;
      res.setHeader('x-request-id', requestIdOf(req.headers));
      exposition.serve(req, res);
      return;
    }
    const startedAt = performance.now();
    const q = url.indexOf('?');
    const path = normalizePath(q === -1 ? url : url.slice(0, q));
    if (path === null) {
      refuse(req, res, BAD_PATH, startedAt);
      return;
    }
    const match = router.match(req.method ?? 'GET', path);
    if (match.kind === 'not-found') {
      refuse(req, res, NOT_FOUND, startedAt);
      return;
    }
    if (match.kind === 'method-not-allowed') {
      refuse(
        req,
        res,
        new GatewayError('PORTICO_ERR_METHOD_NOT_ALLOWED', { headers: { allow: match.allow } }),
        startedAt,
      );
      return;
    }

    // Hop-by-hop headers go first: everything the gateway sets from here on (and the
    // middleware after it) is then out of reach of a client's `Connection` header.
    const headers = req.headers;
    if (upgrade === undefined) {
      stripNominated(headers);
    } else {
      // http-proxy-3 forwards upgrades with req.headers as they are.
      stripHopByHop(headers);
      headers.connection = 'upgrade';
      headers.upgrade = upgrade;
    }
    // Only the gateway speaks for a client certificate, with or without TLS.
    stripClientCertHeaders(headers, req.rawHeaders);
    const clientCert = clientCerts ? verifiedClientCert(req.socket as TLSSocket) : undefined;
    if (forwardClientCert && clientCert !== undefined) setClientCertHeaders(headers, clientCert);
    const requestId = requestIdOf(headers);
    headers['x-request-id'] = requestId;
    res.setHeader('x-request-id', requestId);

    const peer = canonicalIp(req.socket.remoteAddress ?? '');
    const trustedPeer = isTrusted(trusted, peer);
    const xff = headers['x-forwarded-for'];
    const clientIp = trustedPeer
      ? clientIpOf(peer, typeof xff === 'string' ? xff : undefined, trusted)
      : peer;
    setForwardedHeaders(
      headers,
      peer,
      (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http',
      trustedPeer,
      clientIp,
    );
    if (draining) res.shouldKeepAlive = false;

    const rawParams = match.params;
    let params = rawParams;
    for (const key in rawParams) {
      // Only copy when something actually needs decoding.
      if ((rawParams[key] as string).includes('%')) {
        params = Object.fromEntries(Object.entries(rawParams).map(([k, v]) => [k, decodeParam(v)]));
        break;
      }
    }
    const ctx: InternalContext = {
      requestId,
      route: match.value.path,
      path,
      query: q === -1 ? '' : url.slice(q),
      params,
      wildcard: decodeParam(match.rest),
      clientIp,
      startTime: startedAt,
      state: {},
      claims: undefined,
      traceId: undefined,
      clientCert,
      rawParams,
      rawRest: match.rest,
    };
    attachContext(req, ctx);

    try {
      const result = match.value.handler(req, res);
      if (result !== undefined) result.then(undefined, (err: unknown) => fail(err, res));
    } catch (err) {
      fail(err, res);
    }
  }

  return {
    request(req, res) {
      dispatch(req, res, undefined);
    },
    upgrade(req, socket, head) {
      // A ServerResponse on the raw socket lets middleware answer a refused upgrade (401, 429…)
      // with a normal HTTP response, through the same chain as any other request.
      const res = socketResponse(req, socket);
      (req as UpgradeRequest)[UPGRADE_HEAD] = head;
      const upgrade = req.headers.upgrade;
      dispatch(req, res, typeof upgrade === 'string' ? upgrade : 'websocket');
    },
    connect(req, socket) {
      refuse(req, socketResponse(req, socket), NO_TUNNEL, performance.now());
    },
    startDraining() {
      draining = true;
    },
    close() {
      // Pools belong to the worker's resources: a reload keeps those it still uses.
      for (const forwarder of forwarders) forwarder.close();
    },
  };
}
