import { type ClientRequest, Agent as HttpAgent, type IncomingMessage, type ServerResponse } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import type { Socket } from 'node:net';
import { createProxyServer } from 'http-proxy-3';
import type { Logger } from 'pino';
import { GatewayError, writeError } from '../../shared/errors.js';
import { stripHopByHop } from './headers.js';

/*
 * The terminal handler of every route: hands the request to http-proxy-3 and repairs the
 * parts of its behaviour a gateway cannot live with (see the README's "Proxy" section):
 * keep-alive agents, a real 504 deadline, a JSON 502 on any upstream fault, an `error`
 * listener so a reset never kills the worker, and aborting the client response when the
 * upstream dies mid-body instead of leaving it hanging.
 */

export interface ForwardTarget {
  url: URL;
  timeoutMs: number;
}

const PROXY_REQ = Symbol('portico.proxyReq');
const DEADLINE = Symbol('portico.deadline');
const RESPONSE = Symbol('portico.response');
const SENT_AT = Symbol('portico.sentAt');
const FINISHED = Symbol('portico.upstreamFinished');
type Tracked = IncomingMessage & {
  [PROXY_REQ]?: ClientRequest;
  [DEADLINE]?: NodeJS.Timeout;
  [RESPONSE]?: ServerResponse;
  [SENT_AT]?: number;
  [FINISHED]?: boolean;
};

class UpstreamTimeout extends Error {
  readonly code = 'PORTICO_UPSTREAM_TIMEOUT';
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

/** Builds the forwarding function of one route. */
export function createForwarder(
  target: ForwardTarget,
  agents: AgentPool,
  logger: Logger,
  observers: readonly UpstreamObserver[] = [],
) {
  function finish(req: Tracked, outcome: UpstreamOutcome): void {
    if (req[FINISHED] || observers.length === 0) return;
    req[FINISHED] = true;
    for (const observer of observers) observer.end?.(req, outcome);
  }

  const origin = new URL(target.url.origin);
  const proxy = createProxyServer({
    target: origin,
    agent: agents.get(origin),
    // We compute the whole upstream path ourselves (normalised, rewritten) and set req.url;
    // `toProxy` stops http-proxy-3 from re-resolving it (it would resolve `..`).
    toProxy: true,
    prependPath: false,
    xfwd: false,
    ws: true,
    secure: true,
  });

  proxy.on('proxyReq', (proxyReq: ClientRequest, req: IncomingMessage) => {
    (req as Tracked)[PROXY_REQ] = proxyReq;
  });

  proxy.on('proxyRes', (proxyRes: IncomingMessage, req: IncomingMessage, res: ServerResponse) => {
    clearTimeout((req as Tracked)[DEADLINE]);
    // The upgrade handshake (101) needs its Connection/Upgrade headers.
    if (proxyRes.statusCode !== 101) {
      stripHopByHop(proxyRes.headers);
      // http-proxy-3 would copy the client's (already stripped) Connection header here and
      // default to keep-alive; state the client connection's real fate instead.
      proxyRes.headers.connection = res.shouldKeepAlive ? 'keep-alive' : 'close';
    }
    if (observers.length > 0) {
      const seconds = (performance.now() - ((req as Tracked)[SENT_AT] ?? 0)) / 1000;
      for (const observer of observers) observer.response?.(req, proxyRes.statusCode ?? 0, seconds);
    }
    // If the upstream dies mid-body, pipe() never ends `res`: cut the client off instead.
    proxyRes.once('close', () => {
      finish(req, proxyRes.complete ? 'ok' : 'reset');
      if (!proxyRes.complete && !res.writableEnded) res.destroy();
    });
  });

  proxy.on('error', (err: Error, req: IncomingMessage, resOrSocket: ServerResponse | Socket) => {
    clearTimeout((req as Tracked)[DEADLINE]);
    const kind = errorKind(err);
    finish(req, kind);
    if (!('setHeader' in resOrSocket)) {
      logger.warn({ err: err.message, kind }, 'websocket upstream error');
      resOrSocket.destroy();
      return;
    }
    if (resOrSocket.destroyed || resOrSocket.writableEnded) return; // client already gone
    logger.warn({ err: err.message, kind, url: req.url }, 'upstream error');
    writeError(
      resOrSocket,
      new GatewayError(
        kind === 'timeout' ? 'PORTICO_ERR_UPSTREAM_TIMEOUT' : 'PORTICO_ERR_UPSTREAM_UNAVAILABLE',
        { cause: err },
      ),
    );
  });

  // http-proxy-3 emits this instead of `error` when the client went away; nothing to answer.
  proxy.on('econnreset', (_err: Error, req: IncomingMessage) => clearTimeout((req as Tracked)[DEADLINE]));

  function onDeadline(req: Tracked): void {
    const proxyReq = req[PROXY_REQ];
    const err = new UpstreamTimeout(`no upstream response within ${target.timeoutMs} ms`);
    if (proxyReq) proxyReq.destroy(err);
    else proxy.emit('error', err, req, req[RESPONSE] as ServerResponse);
  }

  return {
    web(req: IncomingMessage, res: ServerResponse): void {
      const tracked = req as Tracked;
      tracked[RESPONSE] = res;
      tracked[DEADLINE] = setTimeout(onDeadline, target.timeoutMs, tracked);
      res.once('close', () => {
        clearTimeout(tracked[DEADLINE]);
        finish(tracked, res.writableFinished ? 'ok' : 'aborted');
      });
      if (observers.length > 0) {
        for (const observer of observers) observer.request?.(req);
        tracked[SENT_AT] = performance.now();
      }
      proxy.web(req, res);
    },
    ws(req: IncomingMessage, socket: Socket, head: Buffer): void {
      if (observers.length > 0) {
        for (const observer of observers) observer.request?.(req);
        socket.once('close', () => finish(req, 'ok'));
      }
      proxy.ws(req, socket, head);
    },
    close(): void {
      proxy.close();
    },
  };
}
