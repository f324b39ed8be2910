import type { ClientRequest, IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import type { Logger } from 'pino';
import { GatewayError, PorticoError, writeError } from '../../shared/errors.js';
import type { FailureKind } from '../../shared/upstream-messages.js';
import type { PoolEndpoint, UpstreamEndpoint } from '../upstream/endpoint.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { copyResponseHeaders, outgoingHeaders } from './headers.js';

/*
 * The terminal handler of every route (see the README's "Proxy" and "Upstreams" sections): an
 * endpoint of the route's pool per request (no usable one: a JSON 503 at once), streaming
 * both ways, a real 504 deadline, a JSON 502 on any upstream fault, no listener-less `error`
 * that could kill the worker, and the client response cut off when the upstream dies
 * mid-body instead of left hanging. How each exchange ended goes back to the pool (in-flight
 * counts, passive detection, per-endpoint counts).
 *
 * Plain HTTP is forwarded by our own lean `http.request` path: http-proxy-3's per-request
 * machinery (options spread, per-request closures, header copies, a pass loop) cost about a
 * quarter of a bare proxy's throughput (issue 6, bench/RESULTS.md). WebSocket upgrades, where
 * that cost is paid once per connection, still go through http-proxy-3.
 */

export interface ForwardTarget {
  /** The route's pool: where each request's endpoint comes from. */
  pool: UpstreamPool;
  timeoutMs: number;
}

class UpstreamTimeout extends PorticoError {
  constructor(message: string) {
    super('PORTICO_ERR_UPSTREAM_TIMEOUT', message);
  }
}

// Retry soon: a local ejection lapses within seconds, and the primary's view arrives within one.
const NO_HEALTHY_UPSTREAM = new GatewayError('PORTICO_ERR_NO_HEALTHY_UPSTREAM', {
  headers: { 'retry-after': '1' },
});

export type UpstreamErrorKind = 'timeout' | 'refused' | 'reset' | 'other';

/** How an upstream exchange ended: complete, cut short by the client, or an upstream fault. */
export type UpstreamOutcome = 'ok' | 'aborted' | UpstreamErrorKind;

/**
 * Watches a route's upstream exchanges (metrics, tracing). Registered once per route at
 * start-up through `env.upstream.observe()`; called synchronously on the request path, so
 * implementations must be cheap and must not throw.
 */
export interface UpstreamObserver {
  /**
   * Just before the request is sent to `endpoint` (the pool's choice): `req.headers` can
   * still be changed.
   */
  request?(req: IncomingMessage, endpoint: UpstreamEndpoint): void;
  /** The upstream's response headers arrived, `seconds` after the request was handed over. */
  response?(req: IncomingMessage, status: number, seconds: number): void;
  /** Exactly once per exchange that `request` saw. */
  end?(req: IncomingMessage, outcome: UpstreamOutcome): void;
}

function errorKind(err: NodeJS.ErrnoException): UpstreamErrorKind {
  if (err instanceof UpstreamTimeout || err.code === 'ETIMEDOUT') return 'timeout';
  if (err.code === 'ECONNREFUSED' || err.code === 'ENOTFOUND' || err.code === 'EHOSTUNREACH')
    return 'refused';
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.message === 'socket hang up') return 'reset';
  return 'other';
}

/** What passive detection makes of an outcome: a failure of the upstream's, or nothing. */
const FAILURES: Record<UpstreamOutcome, FailureKind | undefined> = {
  ok: undefined,
  aborted: undefined,
  refused: 'connect_failure',
  other: 'connect_failure',
  reset: 'reset',
  timeout: 'timeout',
};

/**
 * An exchange with an endpoint whose end the pool and the observers hear of, exactly once
 * (`RouteForwarder.finish`).
 */
interface Reported {
  readonly req: IncomingMessage;
  readonly endpoint: PoolEndpoint;
  /** The endpoint's answer head arrived and was counted (upgrades: never counted). */
  answered: boolean;
  finished: boolean;
}

/** Per-exchange state, hung on the emitters so their listeners are shared functions. */
interface Exchange extends Reported {
  readonly res: ServerResponse;
  readonly proxyReq: ClientRequest;
  readonly forwarder: RouteForwarder;
  timer: NodeJS.Timeout | undefined;
  sentAt: number;
  /** The client went away first: upstream errors that follow are ours, not the upstream's. */
  clientGone: boolean;
}

const EXCHANGE = Symbol('portico.exchange');
type Carrier = { [EXCHANGE]?: Exchange };
/** A WebSocket upgrade's record, on its request, for the proxy's shared `error` listener. */
const UPGRADE = Symbol('portico.upgrade');
type UpgradeCarrier = IncomingMessage & { [UPGRADE]?: Reported };

function exchangeOf(emitter: object): Exchange {
  return (emitter as Carrier)[EXCHANGE] as Exchange;
}

/**
 * Forwards the HTTP requests of one route: `http.request` to the endpoint its pool picks, on
 * that endpoint's keep-alive agent, streaming both bodies. This is the per-request hot path, so every listener is a shared
 * function that finds its exchange through a symbol, and nothing is allocated beyond the
 * exchange record and the request options. WebSocket upgrades go through http-proxy-3.
 */
class RouteForwarder {
  readonly pool: UpstreamPool;
  readonly #ws: ProxyServer;

  constructor(
    readonly target: ForwardTarget,
    readonly logger: Logger,
    readonly observers: readonly UpstreamObserver[],
  ) {
    this.pool = target.pool;
    // Each upgrade names its endpoint's target and agent (per-call options).
    this.#ws = createProxyServer({
      // req.url is already the whole upstream path; `toProxy` stops http-proxy-3 from
      // re-resolving it (it would resolve `..`).
      toProxy: true,
      prependPath: false,
      xfwd: false,
      ws: true,
      secure: true,
    });
    this.#ws.on('error', (err: Error, req: IncomingMessage, socket: Socket | ServerResponse) => {
      const kind = errorKind(err);
      const upgrade = (req as UpgradeCarrier)[UPGRADE];
      if (upgrade !== undefined) this.finish(upgrade, kind);
      this.logger.warn(
        { err: err.message, kind, endpoint: upgrade?.endpoint.id },
        'websocket upstream error',
      );
      socket.destroy();
    });
  }

  /** Forwards `req`, its `url` already the upstream path. */
  web(req: IncomingMessage, res: ServerResponse): void {
    const endpoint = this.pool.pick(req);
    if (endpoint === undefined) {
      writeError(res, NO_HEALTHY_UPSTREAM);
      return;
    }
    const observers = this.observers;
    for (let i = 0; i < observers.length; i++) observers[i]?.request?.(req, endpoint);
    const headers = outgoingHeaders(req.headers);
    // An HTTP/1.0 client may send no Host; the upstream hop always has one.
    if (req.headers.host === undefined) headers.push('host', endpoint.hostHeader);
    const proxyReq = endpoint.request({
      agent: endpoint.agent,
      hostname: endpoint.host,
      port: endpoint.port,
      // The Host header is the client's, so TLS must be told the upstream's name (SNI).
      servername: endpoint.servername,
      method: req.method,
      path: req.url,
      // A flat [name, value, …] list is serialised as is (Node's own fast path).
      headers,
    });
    this.pool.started(endpoint);
    const exchange: Exchange = {
      req,
      res,
      proxyReq,
      forwarder: this,
      endpoint,
      timer: setTimeout(onDeadline, this.target.timeoutMs, proxyReq),
      sentAt: observers.length > 0 ? performance.now() : 0,
      clientGone: false,
      answered: false,
      finished: false,
    };
    (proxyReq as Carrier)[EXCHANGE] = exchange;
    (res as Carrier)[EXCHANGE] = exchange;
    proxyReq.on('response', onUpstreamResponse);
    proxyReq.on('error', onUpstreamError);
    res.on('close', onClientClose);
    const length = req.headers['content-length'];
    if (req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0')) {
      (req as Carrier)[EXCHANGE] = exchange;
      req.on('error', onClientError);
      req.pipe(proxyReq);
    } else {
      proxyReq.end();
    }
  }

  /**
   * Forwards a WebSocket upgrade: `res` is the response on its raw socket, for an answer
   * before the tunnel exists (no usable endpoint). An open tunnel counts as in flight.
   */
  ws(req: IncomingMessage, res: ServerResponse, head: Buffer): void {
    const endpoint = this.pool.pick(req);
    if (endpoint === undefined) {
      writeError(res, NO_HEALTHY_UPSTREAM);
      return;
    }
    const socket = res.socket as Socket;
    res.detachSocket(socket);
    // The log line of an upgraded request is written when the tunnel closes.
    socket.once('close', () => {
      res.statusCode = 101;
      res.emit('close');
    });
    const upgrade: Reported = { req, endpoint, answered: true, finished: false };
    (req as UpgradeCarrier)[UPGRADE] = upgrade;
    for (const observer of this.observers) observer.request?.(req, endpoint);
    this.pool.started(endpoint);
    socket.once('close', () => this.finish(upgrade, 'ok'));
    this.#ws.ws(req, socket, head, endpoint.wsOptions);
  }

  /** Tells the pool and the observers how an exchange (or upgrade) ended, exactly once. */
  finish(exchange: Reported, outcome: UpstreamOutcome): void {
    if (exchange.finished) return;
    exchange.finished = true;
    this.pool.ended(exchange.endpoint, FAILURES[outcome], exchange.answered);
    const observers = this.observers;
    for (let i = 0; i < observers.length; i++) observers[i]?.end?.(exchange.req, outcome);
  }

  close(): void {
    this.#ws.close();
  }
}

function onDeadline(proxyReq: ClientRequest): void {
  const { target } = exchangeOf(proxyReq).forwarder;
  proxyReq.destroy(new UpstreamTimeout(`no upstream response within ${target.timeoutMs} ms`));
}

function onUpstreamResponse(this: ClientRequest, proxyRes: IncomingMessage): void {
  const exchange = exchangeOf(this);
  const { res, forwarder } = exchange;
  clearTimeout(exchange.timer);
  const status = proxyRes.statusCode ?? 502;
  exchange.answered = true;
  forwarder.pool.responded(exchange.endpoint, status);
  const observers = forwarder.observers;
  if (observers.length > 0) {
    const seconds = (performance.now() - exchange.sentAt) / 1000;
    for (let i = 0; i < observers.length; i++) observers[i]?.response?.(exchange.req, status, seconds);
  }
  if (res.destroyed) {
    proxyRes.resume();
    return;
  }
  (proxyRes as Carrier)[EXCHANGE] = exchange;
  // If the upstream dies mid-body, pipe() never ends `res`: cut the client off instead.
  proxyRes.on('close', onUpstreamBodyClose);
  // Node writes the client connection's own Connection header; the upstream's is hop-by-hop.
  copyResponseHeaders(res, proxyRes.headers);
  const message = proxyRes.statusMessage;
  if (message) res.statusMessage = message;
  res.writeHead(status);
  proxyRes.pipe(res);
}

function onUpstreamBodyClose(this: IncomingMessage): void {
  const exchange = exchangeOf(this);
  exchange.forwarder.finish(exchange, this.complete ? 'ok' : 'reset');
  if (!this.complete && !exchange.res.writableEnded) exchange.res.destroy();
}

function onUpstreamError(this: ClientRequest, err: Error): void {
  const exchange = exchangeOf(this);
  const { res, forwarder, req } = exchange;
  clearTimeout(exchange.timer);
  if (exchange.clientGone) {
    forwarder.finish(exchange, 'aborted');
    return;
  }
  const kind = errorKind(err);
  forwarder.finish(exchange, kind);
  if (res.destroyed || res.writableEnded) return;
  forwarder.logger.warn(
    { err: err.message, kind, url: req.url, upstream: forwarder.pool.name, endpoint: exchange.endpoint.id },
    'upstream error',
  );
  // After the response head went out, writeError can only cut the connection: that is the
  // one honest signal left for a body that will never complete.
  writeError(
    res,
    new GatewayError(
      kind === 'timeout' ? 'PORTICO_ERR_UPSTREAM_TIMEOUT' : 'PORTICO_ERR_UPSTREAM_UNAVAILABLE',
      {
        cause: err,
      },
    ),
  );
}

function onClientClose(this: ServerResponse): void {
  const exchange = exchangeOf(this);
  clearTimeout(exchange.timer);
  if (this.writableFinished) {
    exchange.forwarder.finish(exchange, 'ok');
    return;
  }
  // The client went away (or we cut it off): stop talking to the upstream for it.
  exchange.clientGone = true;
  exchange.forwarder.finish(exchange, 'aborted');
  exchange.proxyReq.destroy();
}

function onClientError(this: IncomingMessage): void {
  const exchange = exchangeOf(this);
  exchange.clientGone = true;
  exchange.proxyReq.destroy();
}

/** Builds the forwarding functions of one route. */
export function createForwarder(
  target: ForwardTarget,
  logger: Logger,
  observers: readonly UpstreamObserver[] = [],
): Pick<RouteForwarder, 'web' | 'ws' | 'close'> {
  return new RouteForwarder(target, logger, observers);
}
