import { type ClientRequest, Agent as HttpAgent, request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { Agent as HttpsAgent, type RequestOptions, request as httpsRequest } from 'node:https';
import { PorticoError } from '../../shared/errors.js';
import type { UpstreamTlsPlan } from '../../shared/plan/types.js';
import { type UpstreamTlsReason, upstreamTlsOptions } from '../../shared/upstream-tls.js';
import type { EndpointState, EndpointView } from '../../shared/upstream-messages.js';
import type { Balanced } from './balancer.js';
import {
  acquireCounts,
  type EndpointCounts,
  releaseCounts,
  type UpstreamRequests,
} from './request-counts.js';

/** Where an exchange went, as observers (tracing) see it. */
export interface UpstreamEndpoint {
  /** `host:port`, IPv6 in brackets. */
  readonly id: string;
  /** The address connected to (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
}

const AGENT_OPTIONS = {
  keepAlive: true,
  // Reuse the most recently used socket so idle ones age out instead of being kept warm.
  scheduling: 'lifo' as const,
  maxFreeSockets: 256,
  // Idle sockets are closed before a typical upstream's 5 s keep-alive timeout, which
  // avoids the race where we reuse a socket the upstream is closing.
  timeout: 4_000,
};

/** A connection to an endpoint that was not up within `timeouts.connect` (answered 504). */
export class ConnectTimeout extends PorticoError {
  constructor(message: string) {
    super('PORTICO_ERR_UPSTREAM_TIMEOUT', message);
  }
}

function onConnectTimeout(socket: Socket, ms: number): void {
  socket.destroy(new ConnectTimeout(`no connection within ${ms} ms`));
}

/**
 * Bounds every connection the agent makes by `connectMs` (TCP, and TLS for HTTPS): Node has no
 * connect timeout of its own. Paid per connection, never per request.
 */
function boundConnect(agent: HttpAgent, connectMs: number, secure: boolean): void {
  const create = agent.createConnection.bind(agent) as (...args: unknown[]) => Socket;
  const ready = secure ? 'secureConnect' : 'connect';
  agent.createConnection = (...args: unknown[]) => {
    const socket = create(...args);
    const timer = setTimeout(onConnectTimeout, connectMs, socket, connectMs);
    const clear = () => clearTimeout(timer);
    socket.once(ready, clear);
    socket.once('close', clear);
    return socket;
  };
}

/**
 * One endpoint of a pool in this worker: everything a request needs to reach it, worked out
 * once when it joins the list (never per request), its own keep-alive agent, and what this
 * worker knows of it (in-flight requests, consecutive failures, a local ejection).
 */
export class PoolEndpoint implements Balanced, UpstreamEndpoint {
  readonly id: string;
  readonly host: string;
  readonly port: number;
  /** Sent when a client sent no Host (HTTP/1.0): the target's name, or the address. */
  readonly hostHeader: string;
  /** The target's hostname for HTTPS (undefined for IP targets and plain HTTP). */
  readonly servername: string | undefined;
  readonly agent: HttpAgent;
  readonly request: (options: RequestOptions) => ClientRequest;
  /** Per-call options of http-proxy-3 for a WebSocket upgrade to this endpoint. */
  readonly wsOptions: { target: URL; agent: HttpAgent };
  weight: number;
  priority: number;
  state: EndpointState;
  inFlight = 0;
  /** Failures in a row seen by this worker (passive detection). */
  failures = 0;
  /** Until when (ms since the epoch) this worker does not use it on its own account; 0: not ejected. */
  ejectedUntil = 0;
  /** When this worker last reported it to the primary (ms since the epoch). */
  reportedAt = -Infinity;
  /** It left the pool's list: no new requests; the agent goes once the last one ends. */
  gone = false;
  /** TLS failures already logged for this endpoint (a handful of reasons at most: bounded). */
  tlsLogged: Set<UpstreamTlsReason> | undefined;
  /** Its `portico_upstream_requests_total` counts, when metrics are on. */
  readonly #counts: EndpointCounts | undefined;

  constructor(
    view: EndpointView,
    upstream: string,
    requests: UpstreamRequests | undefined,
    connectMs: number,
    tls: UpstreamTlsPlan,
  ) {
    this.id = view.id;
    this.host = view.host;
    this.port = view.port;
    const secure = view.protocol === 'https:';
    this.servername = secure ? view.servername : undefined;
    this.hostHeader = view.servername === undefined ? view.id : `${view.servername}:${view.port}`;
    // On the agent, the TLS options (CA, client certificate, server name, verification) apply
    // to every connection it makes, WebSocket ones through http-proxy-3 included: Node lets an
    // agent's options win over a request's. Made once per endpoint, never per request.
    this.agent = secure
      ? new HttpsAgent({ ...AGENT_OPTIONS, ...upstreamTlsOptions(tls, this.servername) })
      : new HttpAgent(AGENT_OPTIONS);
    boundConnect(this.agent, connectMs, secure);
    this.request = secure ? httpsRequest : httpRequest;
    const urlHost = view.host.includes(':') ? `[${view.host}]` : view.host;
    this.wsOptions = { target: new URL(`${view.protocol}//${urlHost}:${view.port}`), agent: this.agent };
    this.weight = view.weight;
    this.priority = view.priority;
    this.state = view.state;
    this.#counts = requests && acquireCounts(requests, upstream, view.id);
  }

  /** Counts one exchange: `status` of its answer, or 0 when none came. */
  count(status: number): void {
    this.#counts?.count(status);
  }

  /** Usable by this worker at `now`: healthy as the primary says, and not ejected here. */
  usable(now: number): boolean {
    return this.state === 'healthy' && this.ejectedUntil <= now;
  }

  /** Closes its sockets and lets its series go (it left the list and nothing is in flight). */
  destroy(upstream: string, requests: UpstreamRequests | undefined): void {
    this.agent.destroy();
    if (requests !== undefined) releaseCounts(requests, upstream, this.id);
  }
}
