import { type ClientRequest, type IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import type { Logger } from 'pino';
import { GatewayError, PorticoError, writeError } from '../../shared/errors.js';
import type { FailureKind } from '../../shared/upstream-messages.js';
import { ConnectTimeout, type PoolEndpoint, type UpstreamEndpoint } from '../upstream/endpoint.js';
import type { UpstreamPool } from '../upstream/pool.js';
import { reasonLabel, type RetryReason, retryAfterMs } from '../upstream/retry-policy.js';
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
  /**
   * The route's `timeout`: the response headers must arrive within it of the start, over all
   * tries; null: each try gets the upstream's `timeouts.response`.
   */
  timeoutMs: number | null;
  /** `server.max_body_size`; 0: unlimited. */
  maxBodySize: number;
}

class UpstreamTimeout extends PorticoError {
  constructor(
    message: string,
    /** The route's deadline passed: no try is left. */
    readonly final: boolean,
    /** `timeouts.idle`, not the response deadline. */
    readonly idle: boolean,
  ) {
    super('PORTICO_ERR_UPSTREAM_TIMEOUT', message);
  }
}

// Retry soon: a local ejection lapses within seconds, and the primary's view arrives within one.
const NO_HEALTHY_UPSTREAM = new GatewayError('PORTICO_ERR_NO_HEALTHY_UPSTREAM', {
  headers: { 'retry-after': '1' },
});
const BODY_TOO_LARGE = new GatewayError('PORTICO_ERR_BODY_TOO_LARGE');
const UPLOAD_STALLED = new GatewayError('PORTICO_ERR_REQUEST_TIMEOUT');

/**
 * A chunked body is held back from the upstream until it ends or this much of it arrived
 * (or `max_body_size`, if smaller), so a body over the limit usually never reaches the
 * upstream; beyond it, the body streams and one that passes the limit later is cut off.
 */
export const BODY_HOLD_BYTES = 1024 * 1024;

export type UpstreamErrorKind = 'timeout' | 'connect_timeout' | 'refused' | 'reset' | 'other';

/** How an upstream exchange ended: complete, cut short by the client, or an upstream fault. */
export type UpstreamOutcome = 'ok' | 'aborted' | UpstreamErrorKind;

/**
 * Watches a route's upstream exchanges (metrics, tracing). Registered once per route at
 * start-up through `env.upstream.observe()`; called synchronously on the request path, so
 * implementations must be cheap and must not throw. A retried request is one exchange per try.
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
  if (err instanceof UpstreamTimeout) return 'timeout';
  if (err instanceof ConnectTimeout || err.code === 'ETIMEDOUT') return 'connect_timeout';
  if (
    err.code === 'ECONNREFUSED' ||
    err.code === 'ENOTFOUND' ||
    err.code === 'EHOSTUNREACH' ||
    err.code === 'ENETUNREACH' ||
    err.code === 'EADDRNOTAVAIL'
  )
    return 'refused';
  if (err.code === 'ECONNRESET' || err.code === 'EPIPE' || err.message === 'socket hang up') return 'reset';
  return 'other';
}

/** What passive detection makes of an outcome: a failure of the upstream's, or nothing. */
const FAILURES: Record<UpstreamOutcome, FailureKind | undefined> = {
  ok: undefined,
  aborted: undefined,
  refused: 'connect_failure',
  connect_timeout: 'connect_failure',
  other: 'connect_failure',
  reset: 'reset',
  timeout: 'timeout',
};

/** What a retry makes of a fault before the response headers. */
const REASONS: Record<UpstreamErrorKind, RetryReason> = {
  refused: 'connect_failure',
  connect_timeout: 'connect_failure',
  timeout: 'timeout',
  reset: 'reset_before_response',
  other: 'reset_before_response',
};

/**
 * An exchange with an endpoint whose end the pool and the observers hear of, exactly once
 * (`RouteForwarder.finish`).
 */
interface Reported {
  readonly req: IncomingMessage;
  endpoint: PoolEndpoint;
  /** The endpoint's answer head arrived and was counted (upgrades: never counted). */
  answered: boolean;
  finished: boolean;
}

/**
 * One client request on its way upstream, over all its tries: the fields of `Reported`
 * describe the current try. Hung on the emitters so their listeners are shared functions.
 */
interface Exchange extends Reported {
  readonly res: ServerResponse;
  readonly forwarder: RouteForwarder;
  /** The current (or last) try's request; undefined before the first and during a backoff. */
  proxyReq: ClientRequest | undefined;
  /** The response deadline of the current try, or the backoff before the next. */
  timer: NodeJS.Timeout | undefined;
  sentAt: number;
  /** The client went away first: upstream errors that follow are ours, not the upstream's. */
  clientGone: boolean;
  /** The gateway answered (413, 408) or the client is gone: nothing more is forwarded. */
  done: boolean;
  /** Tries started. */
  tries: number;
  /** `endpoint outcome` of each try, once one was retried (no array on the happy path). */
  outcomes: string[] | null;
  /** When (performance.now) the route's `timeout` ends; Infinity without one. */
  readonly deadline: number;
  readonly hasBody: boolean;
  bodyBytes: number;
  bodyEnded: boolean;
  /** All of the body read so far is in `kept` (for a replay, or held); false once it did not fit. */
  replayable: boolean;
  /** That body: one chunk as is (no array for the usual small body), more in an array. */
  kept: Buffer | Buffer[] | undefined;
  keepBytes: number;
  /** The body is held back from the upstream until it ends or `BODY_HOLD_BYTES` arrived. */
  holding: boolean;
  /** Counted in the pool's `retrying`. */
  retrying: boolean;
}

const EXCHANGE = Symbol('portico.exchange');
type Carrier = { [EXCHANGE]?: Exchange };
/** A WebSocket upgrade's record, on its request, for the proxy's shared `error` listener. */
const UPGRADE = Symbol('portico.upgrade');
type UpgradeCarrier = IncomingMessage & { [UPGRADE]?: Reported };
/** The tries of a retried request, for its log line. */
const TRIES = Symbol('portico.tries');
type TriesCarrier = IncomingMessage & { [TRIES]?: readonly string[] };

function exchangeOf(emitter: object): Exchange {
  return (emitter as Carrier)[EXCHANGE] as Exchange;
}

/**
 * Each try of a request that was retried, as `endpoint outcome` (`127.0.0.1:9001
 * connect_failure`, `127.0.0.1:9002 200`); undefined when it took one try.
 */
export function triesOf(req: IncomingMessage): readonly string[] | undefined {
  return (req as TriesCarrier)[TRIES];
}

/**
 * Forwards the HTTP requests of one route: `http.request` to the endpoint its pool picks, on
 * that endpoint's keep-alive agent, streaming both bodies, and a failed try again where the
 * upstream's `retry` allows. This is the per-request hot path, so every listener is a shared
 * function that finds its exchange through a symbol, and nothing is allocated beyond the
 * exchange record and the request options until a try fails. WebSocket upgrades go through
 * http-proxy-3.
 */
class RouteForwarder {
  readonly pool: UpstreamPool;
  /** Body bytes kept for a replay: the retry buffer, 0 when the upstream never retries. */
  readonly keepBytes: number;
  /** Body bytes of a chunked request held back before the first try (0: none). */
  readonly holdBytes: number;
  readonly #ws: ProxyServer;

  constructor(
    readonly target: ForwardTarget,
    readonly logger: Logger,
    readonly observers: readonly UpstreamObserver[],
  ) {
    this.pool = target.pool;
    this.keepBytes = this.pool.retry.attempts > 0 ? this.pool.retry.bufferBytes : 0;
    this.holdBytes = target.maxBodySize > 0 ? Math.min(target.maxBodySize, BODY_HOLD_BYTES) : 0;
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

  /**
   * The endpoint for a new request, or undefined once `res` carries the refusal: the
   * `circuit_breaker` (open, or a limit full) or no usable endpoint.
   */
  #choose(req: IncomingMessage, res: ServerResponse): PoolEndpoint | undefined {
    const refusal = this.pool.admit();
    if (refusal !== undefined) {
      writeError(res, refusal);
      return undefined;
    }
    const endpoint = this.pool.pick(req);
    if (endpoint === undefined) writeError(res, NO_HEALTHY_UPSTREAM);
    return endpoint;
  }

  /** Forwards `req`, its `url` already the upstream path. */
  web(req: IncomingMessage, res: ServerResponse): void {
    const headers = req.headers;
    const length = headers['content-length'];
    const max = this.target.maxBodySize;
    // A declared length over the limit is refused before anything is sent. The body is read
    // and dropped (within `request_timeout`) so that a client still sending sees the answer
    // rather than a reset, and the connection stays usable.
    if (max > 0 && length !== undefined && Number(length) > max) {
      req.resume();
      writeError(res, BODY_TOO_LARGE);
      return;
    }
    const endpoint = this.#choose(req, res);
    if (endpoint === undefined) return;
    const chunked = headers['transfer-encoding'] !== undefined;
    const hasBody = chunked || (length !== undefined && length !== '0');
    const holding = hasBody && chunked && this.holdBytes > 0;
    const keepBytes = holding ? Math.max(this.keepBytes, this.holdBytes) : this.keepBytes;
    const timeoutMs = this.target.timeoutMs;
    const exchange: Exchange = {
      req,
      res,
      forwarder: this,
      endpoint,
      proxyReq: undefined,
      timer: undefined,
      sentAt: 0,
      clientGone: false,
      done: false,
      answered: false,
      finished: false,
      tries: 0,
      outcomes: null,
      deadline: timeoutMs === null ? Infinity : performance.now() + timeoutMs,
      hasBody,
      bodyBytes: 0,
      bodyEnded: !hasBody,
      replayable: hasBody && keepBytes > 0,
      kept: undefined,
      keepBytes,
      holding,
      retrying: false,
    };
    this.pool.active++;
    (res as Carrier)[EXCHANGE] = exchange;
    res.on('close', onClientClose);
    if (hasBody) {
      (req as Carrier)[EXCHANGE] = exchange;
      req.on('data', onClientData);
      req.on('end', onClientEnd);
      req.on('error', onClientError);
    }
    if (!holding) startTry(exchange);
  }

  /**
   * Forwards a WebSocket upgrade: `res` is the response on its raw socket, for an answer
   * before the tunnel exists (no usable endpoint). An open tunnel counts as in flight.
   */
  ws(req: IncomingMessage, res: ServerResponse, head: Buffer): void {
    const endpoint = this.#choose(req, res);
    if (endpoint === undefined) return;
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

  /** Tells the pool and the observers how a try (or upgrade) ended, exactly once. */
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

/**
 * A try that does not start in the turn `web` admitted the request in (after a held body, or
 * a retry) asks the `circuit_breaker` again: an open breaker or a full limit answers for it.
 */
function admitted(exchange: Exchange): boolean {
  const refusal = exchange.forwarder.pool.admit();
  if (refusal === undefined) return true;
  exchange.done = true;
  drop(exchange);
  writeError(exchange.res, refusal);
  return false;
}

/** Sends the request to `exchange.endpoint`: the first try, or a retry. */
function startTry(exchange: Exchange): void {
  const { req, forwarder, endpoint } = exchange;
  const pool = forwarder.pool;
  exchange.tries++;
  exchange.answered = false;
  exchange.finished = false;
  const observers = forwarder.observers;
  for (let i = 0; i < observers.length; i++) observers[i]?.request?.(req, endpoint);
  const headers = outgoingHeaders(req.headers);
  // An HTTP/1.0 client may send no Host; the upstream hop always has one.
  if (req.headers.host === undefined) headers.push('host', endpoint.hostHeader);
  const timeouts = pool.timeouts;
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
    // The socket's inactivity timer, both ways, while this request holds it: `timeouts.idle`.
    timeout: timeouts.idleMs,
  });
  pool.started(endpoint);
  pool.connecting(proxyReq);
  exchange.proxyReq = proxyReq;
  const deadline = exchange.deadline;
  exchange.timer = setTimeout(
    onDeadline,
    deadline === Infinity ? timeouts.responseMs : Math.max(0, deadline - performance.now()),
    exchange,
  );
  if (observers.length > 0) exchange.sentAt = performance.now();
  (proxyReq as Carrier)[EXCHANGE] = exchange;
  proxyReq.on('response', onUpstreamResponse);
  proxyReq.on('error', onUpstreamError);
  proxyReq.on('timeout', onUpstreamIdle);
  if (!exchange.hasBody) {
    proxyReq.end();
    return;
  }
  proxyReq.on('drain', onUpstreamDrain);
  const kept = exchange.kept;
  if (Array.isArray(kept)) for (let i = 0; i < kept.length; i++) proxyReq.write(kept[i]);
  else if (kept !== undefined) proxyReq.write(kept);
  // Held bytes beyond the retry buffer are not kept for a replay.
  if (exchange.bodyBytes > forwarder.keepBytes) drop(exchange);
  exchange.keepBytes = forwarder.keepBytes;
  if (exchange.bodyEnded) proxyReq.end();
  else req.resume();
}

function keep(exchange: Exchange, chunk: Buffer): void {
  const kept = exchange.kept;
  if (kept === undefined) exchange.kept = chunk;
  else if (Array.isArray(kept)) kept.push(chunk);
  else exchange.kept = [kept, chunk];
}

/** The body read so far can no longer be replayed (too big, or the answer is the client's). */
function drop(exchange: Exchange): void {
  exchange.replayable = false;
  exchange.kept = undefined;
}

function onClientData(this: IncomingMessage, chunk: Buffer): void {
  const exchange = exchangeOf(this);
  if (exchange.done) return;
  const bytes = (exchange.bodyBytes += chunk.length);
  const max = exchange.forwarder.target.maxBodySize;
  if (max > 0 && bytes > max) {
    refuseBody(exchange, BODY_TOO_LARGE);
    return;
  }
  if (exchange.holding) {
    keep(exchange, chunk);
    if (bytes >= exchange.forwarder.holdBytes) {
      exchange.holding = false;
      if (admitted(exchange)) startTry(exchange);
    }
    return;
  }
  if (exchange.replayable) {
    if (bytes <= exchange.keepBytes) keep(exchange, chunk);
    else drop(exchange);
  }
  const proxyReq = exchange.proxyReq;
  // Between tries: the next one replays what was kept, and reading waits for it.
  if (proxyReq === undefined) this.pause();
  else if (!proxyReq.write(chunk)) this.pause();
}

function onClientEnd(this: IncomingMessage): void {
  const exchange = exchangeOf(this);
  exchange.bodyEnded = true;
  if (exchange.done) return;
  if (exchange.holding) {
    exchange.holding = false;
    if (admitted(exchange)) startTry(exchange);
    return;
  }
  exchange.proxyReq?.end();
}

function onUpstreamDrain(this: ClientRequest): void {
  const exchange = exchangeOf(this);
  if (exchange.proxyReq === this && !exchange.done) exchange.req.resume();
}

/** The gateway answers for the body (413, 408): the upstream gets no more of it. */
function refuseBody(exchange: Exchange, error: GatewayError): void {
  exchange.done = true;
  drop(exchange);
  clearTimeout(exchange.timer);
  const proxyReq = exchange.proxyReq;
  if (proxyReq !== undefined) {
    exchange.clientGone = true;
    exchange.forwarder.finish(exchange, 'aborted');
    proxyReq.destroy();
  }
  writeError(exchange.res, error);
}

function onDeadline(exchange: Exchange): void {
  const final = exchange.deadline !== Infinity;
  const ms = final ? exchange.forwarder.target.timeoutMs : exchange.forwarder.pool.timeouts.responseMs;
  exchange.proxyReq?.destroy(new UpstreamTimeout(`no upstream response within ${ms} ms`, final, false));
}

function onUpstreamIdle(this: ClientRequest): void {
  const exchange = exchangeOf(this);
  if (exchange.proxyReq !== this) return;
  const ms = exchange.forwarder.pool.timeouts.idleMs;
  this.destroy(new UpstreamTimeout(`no bytes either way for ${ms} ms`, false, true));
}

/** Whether the failed try may be tried again for `reason` (the budget is asked last). */
function mayRetry(exchange: Exchange, reason: RetryReason): boolean {
  const pool = exchange.forwarder.pool;
  const policy = pool.retry;
  return (
    exchange.tries <= policy.attempts &&
    !exchange.done &&
    !exchange.res.headersSent &&
    (!exchange.hasBody || exchange.replayable) &&
    policy.allows(reason, exchange.req.method ?? 'GET') &&
    performance.now() < exchange.deadline &&
    pool.mayRetry(exchange.retrying)
  );
}

/** Notes the try's outcome (once the request has more than one) for the log line. */
function noteTry(exchange: Exchange, outcome: string | number): void {
  let outcomes = exchange.outcomes;
  if (outcomes === null) {
    if (exchange.tries < 2 && exchange.retrying === false) return;
    outcomes = exchange.outcomes = [];
    (exchange.req as TriesCarrier)[TRIES] = outcomes;
  }
  outcomes.push(`${exchange.endpoint.id} ${outcome}`);
}

function scheduleRetry(exchange: Exchange, reason: RetryReason, retryAfter: number | undefined): void {
  const pool = exchange.forwarder.pool;
  if (!exchange.retrying) {
    exchange.retrying = true;
    pool.retrying++;
  }
  noteTry(exchange, reasonLabel(reason));
  pool.retried(reason);
  exchange.proxyReq = undefined;
  if (!exchange.bodyEnded) exchange.req.pause();
  const wait = pool.retry.backoffMs(exchange.tries, retryAfter);
  exchange.timer = setTimeout(
    retryNow,
    Math.min(wait, Math.max(0, exchange.deadline - performance.now())),
    exchange,
  );
}

function retryNow(exchange: Exchange): void {
  exchange.timer = undefined;
  if (exchange.done) return;
  if (exchange.hasBody && !exchange.replayable) {
    // The body grew past the retry buffer while waiting: what was read cannot be replayed.
    writeError(exchange.res, new GatewayError('PORTICO_ERR_UPSTREAM_UNAVAILABLE'));
    return;
  }
  if (performance.now() >= exchange.deadline) {
    // The route's timeout ran out during the backoff: no try starts past it.
    writeError(exchange.res, new GatewayError('PORTICO_ERR_UPSTREAM_TIMEOUT'));
    return;
  }
  if (!admitted(exchange)) return;
  const endpoint = exchange.forwarder.pool.pickAnother(exchange.req, exchange.endpoint);
  if (endpoint === undefined) {
    writeError(exchange.res, NO_HEALTHY_UPSTREAM);
    return;
  }
  exchange.endpoint = endpoint;
  startTry(exchange);
}

function onUpstreamResponse(this: ClientRequest, proxyRes: IncomingMessage): void {
  const exchange = exchangeOf(this);
  if (exchange.proxyReq !== this) {
    proxyRes.resume();
    return;
  }
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
  if (forwarder.pool.retry.onStatus(status) && mayRetry(exchange, status)) {
    // The answer is dropped: the client sees the next try's.
    proxyRes.resume();
    forwarder.finish(exchange, 'ok');
    if (!exchange.bodyEnded) this.destroy();
    scheduleRetry(
      exchange,
      status,
      status === 503 ? retryAfterMs(proxyRes.headers['retry-after']) : undefined,
    );
    return;
  }
  // From here on the answer is the client's: nothing is retried.
  drop(exchange);
  if (exchange.outcomes !== null) noteTry(exchange, status);
  (proxyRes as Carrier)[EXCHANGE] = exchange;
  // If the upstream dies mid-body, pipe() never ends `res`: cut the client off instead.
  proxyRes.on('close', onUpstreamBodyClose);
  // Node writes the client connection's own Connection header; the upstream's is hop-by-hop.
  copyResponseHeaders(res, proxyRes.headers);
  const message = proxyRes.statusMessage;
  // HTTP/2 has no reason phrase (Node warns when one is set on its responses).
  if (message && res instanceof ServerResponse) res.statusMessage = message;
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
  if (exchange.proxyReq !== this) return;
  const { res, forwarder, req } = exchange;
  clearTimeout(exchange.timer);
  if (exchange.clientGone) {
    forwarder.finish(exchange, 'aborted');
    return;
  }
  if (err instanceof UpstreamTimeout && err.idle && !exchange.bodyEnded) {
    // Nothing moved because the client stopped sending: its request timed out, not the upstream.
    forwarder.finish(exchange, 'aborted');
    refuseBody(exchange, UPLOAD_STALLED);
    return;
  }
  const kind = errorKind(err);
  forwarder.finish(exchange, kind);
  if (res.destroyed || res.writableEnded) return;
  if (!exchange.answered && !(err instanceof UpstreamTimeout && err.final)) {
    const reason = REASONS[kind];
    if (mayRetry(exchange, reason)) {
      scheduleRetry(exchange, reason, undefined);
      return;
    }
  }
  exchange.done = true;
  if (exchange.outcomes !== null) noteTry(exchange, kind);
  forwarder.logger.warn(
    {
      err: err.message,
      kind,
      url: req.url,
      upstream: forwarder.pool.name,
      endpoint: exchange.endpoint.id,
      tries: exchange.tries,
    },
    'upstream error',
  );
  // After the response head went out, writeError can only cut the connection: that is the
  // one honest signal left for a body that will never complete.
  writeError(
    res,
    new GatewayError(
      kind === 'timeout' || kind === 'connect_timeout'
        ? 'PORTICO_ERR_UPSTREAM_TIMEOUT'
        : 'PORTICO_ERR_UPSTREAM_UNAVAILABLE',
      { cause: err },
    ),
  );
}

function onClientClose(this: ServerResponse): void {
  const exchange = exchangeOf(this);
  clearTimeout(exchange.timer);
  exchange.done = true;
  const pool = exchange.forwarder.pool;
  pool.active--;
  if (exchange.retrying) pool.retrying--;
  const proxyReq = exchange.proxyReq;
  if (proxyReq === undefined) return;
  if (this.writableFinished) {
    exchange.forwarder.finish(exchange, 'ok');
    return;
  }
  // The client went away (or we cut it off): stop talking to the upstream for it.
  exchange.clientGone = true;
  exchange.forwarder.finish(exchange, 'aborted');
  proxyReq.destroy();
}

function onClientError(this: IncomingMessage): void {
  const exchange = exchangeOf(this);
  exchange.clientGone = true;
  exchange.done = true;
  exchange.proxyReq?.destroy();
}

/** Builds the forwarding functions of one route. */
export function createForwarder(
  target: ForwardTarget,
  logger: Logger,
  observers: readonly UpstreamObserver[] = [],
): Pick<RouteForwarder, 'web' | 'ws' | 'close'> {
  return new RouteForwarder(target, logger, observers);
}
