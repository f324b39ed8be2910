import {
  type ClientRequest,
  Agent as HttpAgent,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import { Agent as HttpsAgent, type RequestOptions, request as httpsRequest } from 'node:https';
import { isIP, type Socket } from 'node:net';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import type { Logger } from 'pino';
import { GatewayError, PorticoError, writeError } from '../../shared/errors.js';
import { copyResponseHeaders, outgoingHeaders } from './headers.js';

/*
 * The terminal handler of every route (see the README's "Proxy" section): keep-alive agents,
 * streaming both ways, a real 504 deadline, a JSON 502 on any upstream fault, no listener-less
 * `error` that could kill the worker, and the client response cut off when the upstream dies
 * mid-body instead of left hanging.
 *
 * Plain HTTP is forwarded by our own lean `http.request` path: http-proxy-3's per-request
 * machinery (options spread, per-request closures, header copies, a pass loop) cost about a
 * quarter of a bare proxy's throughput (issue 6, bench/RESULTS.md). WebSocket upgrades, where
 * that cost is paid once per connection, still go through http-proxy-3.
 */

export interface ForwardTarget {
  url: URL;
  timeoutMs: number;
}

class UpstreamTimeout extends PorticoError {
  constructor(message: string) {
    super('PORTICO_ERR_UPSTREAM_TIMEOUT', message);
  }
}

/** One keep-alive agent per upstream origin, shared by all routes of a worker. */
export class AgentPool {
  readonly #agents = new Map<string, HttpAgent>();

  get(url: URL): HttpAgent {
    let agent = this.#agents.get(url.origin);
    if (!agent) {
      const options = {
        keepAlive: true,
        // Reuse the most recently used socket so idle ones age out instead of being kept warm.
        scheduling: 'lifo' as const,
        maxFreeSockets: 256,
        // Idle sockets are closed before a typical upstream's 5 s keep-alive timeout, which
        // avoids the race where we reuse a socket the upstream is closing.
        timeout: 4_000,
      };
      agent = url.protocol === 'https:' ? new HttpsAgent(options) : new HttpAgent(options);
      this.#agents.set(url.origin, agent);
    }
    return agent;
  }

  destroy(): void {
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }
}

export type UpstreamErrorKind = 'timeout' | 'refused' | 'reset' | 'other';

/** How an upstream exchange ended: complete, cut short by the client, or an upstream fault. */
export type UpstreamOutcome = 'ok' | 'aborted' | UpstreamErrorKind;

/**
 * Watches a route's upstream exchanges (metrics, tracing). Registered once per route at
 * start-up through `env.upstream.observe()`; called synchronously on the request path, so
 * implementations must be cheap and must not throw.
 */
export interface UpstreamObserver {
  /** Just before the request is handed to the proxy: `req.headers` can still be changed. */
  request?(req: IncomingMessage): void;
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

/** An exchange the observers hear the end of, exactly once (`RouteForwarder.finish`). */
interface Reported {
  readonly req: IncomingMessage;
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
 * Forwards the HTTP requests of one route: `http.request` on the route's keep-alive agent,
 * streaming both bodies. This is the per-request hot path, so every listener is a shared
 * function that finds its exchange through a symbol, and nothing is allocated beyond the
 * exchange record and the request options. WebSocket upgrades go through http-proxy-3.
 */
class RouteForwarder {
  readonly #request: (options: RequestOptions) => ClientRequest;
  readonly #agent: HttpAgent;
  readonly #hostname: string;
  readonly #host: string;
  readonly #port: number;
  readonly #servername: string | undefined;
  readonly #ws: ProxyServer;

  constructor(
    readonly target: ForwardTarget,
    agents: AgentPool,
    readonly logger: Logger,
    readonly observers: readonly UpstreamObserver[],
  ) {
    const origin = new URL(target.url.origin);
    const secure = origin.protocol === 'https:';
    this.#request = secure ? httpsRequest : httpRequest;
    this.#agent = agents.get(origin);
    // URL keeps IPv6 literals in brackets; sockets want the bare address.
    this.#hostname = origin.hostname.replace(/^\[(.*)\]$/, '$1');
    this.#host = origin.host;
    this.#port = Number(origin.port || (secure ? 443 : 80));
    // The Host header is the client's, so TLS must be told the upstream's name (SNI).
    this.#servername = secure && isIP(this.#hostname) === 0 ? this.#hostname : undefined;
    this.#ws = createProxyServer({
      target: origin,
      agent: this.#agent,
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
      this.logger.warn({ err: err.message, kind }, 'websocket upstream error');
      socket.destroy();
    });
  }

  /** Forwards `req`, its `url` already the upstream path. */
  web(req: IncomingMessage, res: ServerResponse): void {
    const observers = this.observers;
    for (let i = 0; i < observers.length; i++) observers[i]?.request?.(req);
    const headers = outgoingHeaders(req.headers);
    // An HTTP/1.0 client may send no Host; the upstream hop always has one.
    if (req.headers.host === undefined) headers.push('host', this.#host);
    const proxyReq = this.#request({
      agent: this.#agent,
      hostname: this.#hostname,
      port: this.#port,
      servername: this.#servername,
      method: req.method,
      path: req.url,
      // A flat [name, value, …] list is serialised as is (Node's own fast path).
      headers,
    });
    const exchange: Exchange = {
      req,
      res,
      proxyReq,
      forwarder: this,
      timer: setTimeout(onDeadline, this.target.timeoutMs, proxyReq),
      sentAt: observers.length > 0 ? performance.now() : 0,
      clientGone: false,
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

  ws(req: IncomingMessage, socket: Socket, head: Buffer): void {
    if (this.observers.length > 0) {
      const upgrade: Reported = { req, finished: false };
      (req as UpgradeCarrier)[UPGRADE] = upgrade;
      for (const observer of this.observers) observer.request?.(req);
      socket.once('close', () => this.finish(upgrade, 'ok'));
    }
    this.#ws.ws(req, socket, head);
  }

  /** Tells the observers how an exchange (or upgrade) ended, exactly once. */
  finish(exchange: Reported, outcome: UpstreamOutcome): void {
    if (exchange.finished) return;
    exchange.finished = true;
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
  forwarder.logger.warn({ err: err.message, kind, url: req.url }, 'upstream error');
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
  agents: AgentPool,
  logger: Logger,
  observers: readonly UpstreamObserver[] = [],
): Pick<RouteForwarder, 'web' | 'ws' | 'close'> {
  return new RouteForwarder(target, agents, logger, observers);
}
