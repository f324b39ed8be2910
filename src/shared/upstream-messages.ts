/*
 * IPC about upstream pools. The primary owns every pool's endpoint list and health (DNS
 * discovery and active checks run there, once per instance) and broadcasts it; workers
 * balance over it with no per-request IPC, and report what they see on real traffic
 * (passive outlier detection). Checked where they arrive.
 *
 * An endpoint that leaves a pool's list (its address left DNS) gets no new requests in the
 * workers; their in-flight requests to it finish, then its keep-alive sockets close.
 */

/** How an endpoint is doing, as the primary decided. */
export type EndpointState = 'healthy' | 'unhealthy' | 'ejected' | 'unknown';

/** Why a worker saw an exchange with an endpoint fail (passive detection). */
export type FailureKind = 'connect_failure' | 'reset' | 'timeout' | '5xx';

/** One endpoint of a pool: one address (and port) of one target. */
export interface EndpointView {
  /** `host:port` with IPv6 in brackets (`10.0.0.1:9002`, `[::1]:9002`): its metric label. */
  id: string;
  /** Where to connect: an IP address (no brackets), or a hostname from an SRV record. */
  host: string;
  port: number;
  protocol: 'http:' | 'https:';
  /** TLS server name to send and verify: the target's hostname; absent for IP targets. */
  servername?: string;
  weight: number;
  /** SRV priority (lower is preferred); 0 for other targets. */
  priority: number;
  state: EndpointState;
  /** Why it is in that state, in words (`3 failed checks: status 500`), `''` when healthy. */
  reason: string;
  /** When it entered that state (ms since the epoch). */
  since: number;
}

export type UpstreamPrimaryToWorker =
  /**
   * The whole endpoint list of pool `upstream` (plan `UpstreamPlan.name`, `fingerprint`).
   * Sent before a worker gets its plan (so its first request has endpoints) and whenever
   * anything about the pool changes.
   */
  | { type: 'portico:endpoints'; upstream: string; fingerprint: string; endpoints: EndpointView[] }
  /** Asks for the worker's in-flight counts; answered with `portico:upstream-load`. */
  | { type: 'portico:upstream-load-collect'; id: number };

export type UpstreamWorkerToPrimary =
  /**
   * A worker saw `consecutive_failures` failures in a row on an endpoint and stopped using
   * it; the primary decides the ejection (and its length) for the instance.
   */
  | { type: 'portico:outlier'; upstream: string; endpoint: string; reason: FailureKind }
  /**
   * In-flight requests per `upstream` per endpoint id, for `/admin/upstreams`; and (issue 14)
   * each upstream's breaker as this worker sees it.
   */
  | {
      type: 'portico:upstream-load';
      id: number;
      inFlight: Record<string, Record<string, number>>;
      breakers?: Record<string, BreakerView>;
      /** Each upstream's retries as the worker counts them (optional, additive). */
      retries?: Record<string, RetryView>;
    };

/** One worker's view of an upstream's `circuit_breaker` (several pools of a name: the worst). */
export interface BreakerView {
  /** 0 closed, 1 half-open, 2 open, as `portico_circuit_breaker_state`. */
  state: 0 | 1 | 2;
  /** Open: seconds until it lets probes through; else 0. */
  retryAfter: number;
  /** Times it opened in this worker (since the upstream's settings last changed). */
  trips: number;
  /** Requests to the upstream in flight in this worker (what `max_requests` bounds). */
  active: number;
}

/** One worker's retries of an upstream (since the upstream's settings last changed). */
export interface RetryView {
  /** Retries made. */
  retries: number;
  /** Retries the budget refused. */
  budgetRefusals: number;
  /** Requests in retry right now. */
  retrying: number;
}

/*
 * Two views of one upstream combined: the pools of one name in a worker (during a reload),
 * and the workers' answers in the primary. The worst breaker state, the longest wait, counts summed.
 */
export function mergeBreakerViews(a: BreakerView | undefined, b: BreakerView): BreakerView {
  if (a === undefined) return { ...b };
  return {
    state: a.state >= b.state ? a.state : b.state,
    retryAfter: Math.max(a.retryAfter, b.retryAfter),
    trips: a.trips + b.trips,
    active: a.active + b.active,
  };
}

export function mergeRetryViews(a: RetryView | undefined, b: RetryView): RetryView {
  if (a === undefined) return { ...b };
  return {
    retries: a.retries + b.retries,
    budgetRefusals: a.budgetRefusals + b.budgetRefusals,
    retrying: a.retrying + b.retrying,
  };
}

type Fields = Record<string, unknown>;
const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);

const isBreakerView = (v: unknown): boolean =>
  isObject(v) &&
  (v.state === 0 || v.state === 1 || v.state === 2) &&
  typeof v.retryAfter === 'number' &&
  typeof v.trips === 'number' &&
  typeof v.active === 'number';
const isRetryView = (v: unknown): boolean =>
  isObject(v) &&
  typeof v.retries === 'number' &&
  typeof v.budgetRefusals === 'number' &&
  typeof v.retrying === 'number';
const STATES: readonly unknown[] = ['healthy', 'unhealthy', 'ejected', 'unknown'];
const FAILURES: readonly unknown[] = ['connect_failure', 'reset', 'timeout', '5xx'];

function isEndpointView(v: unknown): v is EndpointView {
  return (
    isObject(v) &&
    typeof v.id === 'string' &&
    typeof v.host === 'string' &&
    typeof v.port === 'number' &&
    (v.protocol === 'http:' || v.protocol === 'https:') &&
    (v.servername === undefined || typeof v.servername === 'string') &&
    typeof v.weight === 'number' &&
    typeof v.priority === 'number' &&
    STATES.includes(v.state) &&
    typeof v.reason === 'string' &&
    typeof v.since === 'number'
  );
}

export function isUpstreamPrimaryToWorker(message: unknown): message is UpstreamPrimaryToWorker {
  if (!isObject(message)) return false;
  switch (message.type) {
    case 'portico:endpoints':
      return (
        typeof message.upstream === 'string' &&
        typeof message.fingerprint === 'string' &&
        Array.isArray(message.endpoints) &&
        message.endpoints.every(isEndpointView)
      );
    case 'portico:upstream-load-collect':
      return typeof message.id === 'number';
    default:
      return false;
  }
}

export function isUpstreamWorkerToPrimary(message: unknown): message is UpstreamWorkerToPrimary {
  if (!isObject(message)) return false;
  switch (message.type) {
    case 'portico:outlier':
      return (
        typeof message.upstream === 'string' &&
        typeof message.endpoint === 'string' &&
        FAILURES.includes(message.reason)
      );
    case 'portico:upstream-load':
      return (
        typeof message.id === 'number' &&
        isObject(message.inFlight) &&
        Object.values(message.inFlight).every(
          (counts) => isObject(counts) && Object.values(counts).every((n) => typeof n === 'number'),
        ) &&
        (message.breakers === undefined ||
          (isObject(message.breakers) && Object.values(message.breakers).every(isBreakerView))) &&
        (message.retries === undefined ||
          (isObject(message.retries) && Object.values(message.retries).every(isRetryView)))
      );
    default:
      return false;
  }
}

/** `host:port` as an endpoint id: IPv6 addresses in brackets. */
export function endpointId(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}
