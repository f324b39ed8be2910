import type { ClientRequest, IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import type { GatewayError } from '../../shared/errors.js';
import type { TimeoutsPlan, UpstreamPlan } from '../../shared/plan/types.js';
import type {
  BreakerView,
  EndpointView,
  FailureKind,
  RetryView,
  UpstreamWorkerToPrimary,
} from '../../shared/upstream-messages.js';
import { type Balancer, createBalancer, type RandomSource } from './balancer.js';
import { type BreakerInstruments, CircuitBreaker, countPending } from './breaker.js';
import { PoolEndpoint } from './endpoint.js';
import type { UpstreamRequests } from './request-counts.js';
import { type HashKey, hashKeyOf } from './hash-key.js';
import { reasonLabel, type RetryReason, RetryPolicy } from './retry-policy.js';
import { describeUpstreamTlsFailure, upstreamTlsReason } from '../../shared/upstream-tls.js';

/** The retry counters, when metrics are on. */
export interface RetryCounters {
  /** `portico_upstream_retries_total{upstream,reason}` */
  retries: Counter<'upstream' | 'reason'>;
  /** `portico_upstream_retry_budget_exhausted_total{upstream}` */
  budgetExhausted: Counter<'upstream'>;
}

/** Requests in retry at once that the budget always allows, however few are in flight. */
export const MIN_CONCURRENT_RETRIES = 3;

/**
 * How long this worker keeps an endpoint out on its own after `consecutive_failures`: long
 * enough for the primary's decision (broadcast within a second) to arrive, after which the
 * primary's state rules.
 */
export const PROVISIONAL_EJECTION_MS = 2_000;

export interface PoolOptions {
  plan: UpstreamPlan;
  logger: Logger;
  /** `portico_upstream_requests_total`, when metrics are on. */
  requests?: UpstreamRequests | undefined;
  /** The `circuit_breaker` metrics, when metrics are on. */
  breaker?: BreakerInstruments | undefined;
  /** Sends a message to the primary (`portico:outlier`). */
  report: (message: UpstreamWorkerToPrimary) => void;
  random?: RandomSource;
  retryCounters?: RetryCounters | undefined;
  /** `portico_upstream_tls_errors_total{upstream,reason}`, when metrics are on (issue 15). */
  tlsErrors?: Counter<'upstream' | 'reason'> | undefined;
}

/**
 * One upstream pool in this worker: its endpoints as the primary last listed them, the set
 * requests are balanced over, and what this worker sees on real traffic. Shared by every
 * handler tree whose plan has the same upstream (name and fingerprint), so a reload that
 * leaves an upstream alone keeps its pool, its keep-alive sockets and its counts.
 *
 * The choice set is worked out when something changes (a list, a local ejection, its lapse):
 * the healthy endpoints not ejected here, of the lowest SRV priority that has any; all of
 * that priority when fewer than `panic_threshold` of them are usable (better some errors than
 * none served). Per request there is only `pick`.
 */
export class UpstreamPool {
  readonly name: string;
  readonly timeouts: TimeoutsPlan;
  readonly retry: RetryPolicy;
  /** Requests being forwarded to this upstream by this worker (the retry budget's base). */
  active = 0;
  /** Of those, the ones in retry (waiting out a backoff or on a retry try). */
  retrying = 0;
  /** Retries made, and retries the budget refused, since the pool was made (for an admin view). */
  retries = 0;
  budgetRefusals = 0;
  readonly #plan: UpstreamPlan;
  readonly #counters: RetryCounters | undefined;
  readonly #tlsErrors: Counter<'upstream' | 'reason'> | undefined;
  /** The set the balancer picks from (for a retry that must go elsewhere). */
  #choice: readonly PoolEndpoint[] = [];
  readonly #logger: Logger;
  readonly #requests: UpstreamRequests | undefined;
  readonly #report: (message: UpstreamWorkerToPrimary) => void;
  readonly #balancer: Balancer<PoolEndpoint>;
  readonly #key: HashKey | null;
  readonly #breaker: CircuitBreaker;
  /** The current list, by id. */
  #endpoints = new Map<string, PoolEndpoint>();
  /** Endpoints that left the list with requests still in flight. */
  readonly #leaving = new Set<PoolEndpoint>();
  #lapse: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: PoolOptions) {
    this.name = options.plan.name;
    this.timeouts = options.plan.timeouts;
    this.retry = new RetryPolicy(options.plan.retry);
    this.#counters = options.retryCounters;
    this.#tlsErrors = options.tlsErrors;
    this.#plan = options.plan;
    this.#logger = options.logger;
    this.#requests = options.requests;
    this.#report = options.report;
    this.#balancer = createBalancer(options.plan.balance, options.random);
    this.#key = hashKeyOf(options.plan.balance === 'hash' ? options.plan.hashOn : null);
    this.#breaker = new CircuitBreaker(this.name, options.plan.breaker, options.logger, options.breaker);
  }

  /**
   * Asked before `pick`: the `circuit_breaker`'s refusal (open, or a limit reached), or
   * undefined. Only a request it let through may be `started`, in the same turn.
   */
  admit(): GatewayError | undefined {
    return this.#breaker.admit();
  }

  /** The endpoint for one request, or undefined when none may be used (the caller answers 503). */
  pick(req: IncomingMessage): PoolEndpoint | undefined {
    return this.#balancer.pick(this.#key === null ? undefined : this.#key(req));
  }

  /**
   * The endpoint for a retry of a try that went to `tried`: another one when the choice set
   * has one (the balancer's pick, else the next in the set), else `tried` again.
   */
  pickAnother(req: IncomingMessage, tried: PoolEndpoint): PoolEndpoint | undefined {
    const picked = this.pick(req);
    if (picked !== tried) return picked;
    const choice = this.#choice;
    const at = choice.indexOf(tried);
    for (let i = 1; i < choice.length; i++) {
      const other = choice[(at + i) % choice.length] as PoolEndpoint;
      if (other !== tried) return other;
    }
    return tried;
  }

  /**
   * Whether a request may go into retry now (`already`: it is in retry, counted): the requests
   * in retry stay within `budget` of those in flight, or `MIN_CONCURRENT_RETRIES`.
   */
  mayRetry(already: boolean): boolean {
    const after = this.retrying + (already ? 0 : 1);
    if (after <= Math.max(MIN_CONCURRENT_RETRIES, this.retry.budget * this.active)) return true;
    this.budgetRefusals++;
    this.#counters?.budgetExhausted.inc({ upstream: this.name });
    return false;
  }

  /** A retry is made, for `reason`. */
  retried(reason: RetryReason): void {
    this.retries++;
    this.#counters?.retries.inc({ upstream: this.name, reason: reasonLabel(reason) });
  }

  /** A request goes to `endpoint`. */
  started(endpoint: PoolEndpoint): void {
    endpoint.inFlight++;
    this.#breaker.started();
  }

  /** The request of an exchange just `started` is handed to its endpoint's agent. */
  connecting(proxyReq: ClientRequest): void {
    if (this.#breaker.countsPending) countPending(this.#breaker, proxyReq);
  }

  /** `endpoint` answered `status` (its headers arrived). */
  responded(endpoint: PoolEndpoint, status: number): void {
    endpoint.count(status);
    this.#breaker.judged(status >= 500);
    if (status >= 500) this.#failed(endpoint, '5xx');
    else endpoint.failures = 0;
  }

  /**
   * An exchange with `endpoint` is over: `failure` when it failed on the upstream's side,
   * `answered` when `responded` was called for it.
   */
  ended(endpoint: PoolEndpoint, failure: FailureKind | undefined, answered: boolean): void {
    endpoint.inFlight--;
    if (!answered) {
      endpoint.count(0);
      // No answer: the upstream's fault fails the exchange; a client that left gives no verdict.
      if (failure !== undefined) this.#breaker.judged(true);
    }
    this.#breaker.ended();
    if (failure !== undefined) this.#failed(endpoint, failure);
    if (endpoint.gone && endpoint.inFlight === 0 && this.#leaving.delete(endpoint)) {
      endpoint.destroy(this.name, this.#requests);
    }
  }

  /**
   * A TLS handshake with `endpoint` failed (issue 15): counted every time, logged at error
   * level once per endpoint and reason (a broken CA would otherwise log every request).
   */
  tlsFailed(endpoint: PoolEndpoint, err: Error): void {
    const reason = upstreamTlsReason(err);
    if (reason === undefined) return;
    this.#tlsErrors?.inc({ upstream: this.name, reason });
    if (endpoint.tlsLogged?.has(reason)) return;
    (endpoint.tlsLogged ??= new Set()).add(reason);
    this.#logger.error(
      { upstream: this.name, endpoint: endpoint.id, reason, err: err.message },
      `TLS to upstream endpoint ${endpoint.id} of ${this.name} failed: ${describeUpstreamTlsFailure(reason, err)}`,
    );
  }

  /** The primary's whole list for this pool. */
  update(views: readonly EndpointView[]): void {
    if (this.#closed) return;
    const next = new Map<string, PoolEndpoint>();
    for (const view of views) {
      let endpoint = this.#endpoints.get(view.id);
      if (endpoint === undefined) {
        endpoint = new PoolEndpoint(view, this.name, this.#requests, this.timeouts.connectMs, this.#plan.tls);
      } else {
        endpoint.weight = view.weight;
        endpoint.priority = view.priority;
        // A new verdict of the primary (ejected, healthy again) replaces the local one.
        if (view.state !== endpoint.state) endpoint.ejectedUntil = 0;
        endpoint.state = view.state;
      }
      next.set(view.id, endpoint);
    }
    for (const [id, endpoint] of this.#endpoints) {
      if (next.has(id)) continue;
      endpoint.gone = true;
      if (endpoint.inFlight === 0) endpoint.destroy(this.name, this.#requests);
      else this.#leaving.add(endpoint);
    }
    this.#endpoints = next;
    this.#rebalance();
  }

  /** In-flight requests by endpoint id (for `/admin/upstreams`). */
  inFlight(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const endpoint of this.#endpoints.values()) counts[endpoint.id] = endpoint.inFlight;
    return counts;
  }

  /** The breaker as this worker sees it (for `/admin/upstreams`). */
  retryView(): RetryView {
    return { retries: this.retries, budgetRefusals: this.budgetRefusals, retrying: this.retrying };
  }

  breakerView(): BreakerView {
    const breaker = this.#breaker;
    return {
      state: breaker.state,
      retryAfter: breaker.retryAfter(),
      trips: breaker.trips,
      active: breaker.active,
    };
  }

  close(): void {
    this.#closed = true;
    this.#breaker.close();
    clearTimeout(this.#lapse);
    for (const endpoint of [...this.#endpoints.values(), ...this.#leaving]) {
      endpoint.gone = true;
      endpoint.destroy(this.name, this.#requests);
    }
    this.#endpoints.clear();
    this.#leaving.clear();
    this.#balancer.reset([]);
  }

  #failed(endpoint: PoolEndpoint, kind: FailureKind): void {
    const threshold = this.#plan.outlier.consecutiveFailures;
    if (threshold === 0 || endpoint.gone || this.#closed) return;
    if (++endpoint.failures < threshold) return;
    endpoint.failures = 0;
    const now = Date.now();
    if (endpoint.ejectedUntil <= now && this.#mayEject(now)) {
      endpoint.ejectedUntil = now + PROVISIONAL_EJECTION_MS;
      this.#rebalance();
    }
    // Once per episode: while the primary has it ejected (panic still sends it requests), or
    // within the time its decision takes to arrive, another report would say nothing new.
    if (endpoint.state === 'ejected' || now - endpoint.reportedAt < PROVISIONAL_EJECTION_MS) return;
    endpoint.reportedAt = now;
    this.#logger.warn(
      { upstream: this.name, endpoint: endpoint.id, reason: kind, failures: threshold },
      'upstream endpoint failing: reported to the primary',
    );
    this.#report({ type: 'portico:outlier', upstream: this.name, endpoint: endpoint.id, reason: kind });
  }

  /** `max_ejection_percent` over this worker's view; one endpoint may always go. */
  #mayEject(now: number): boolean {
    let ejected = 0;
    for (const e of this.#endpoints.values()) if (e.state === 'ejected' || e.ejectedUntil > now) ejected++;
    if (ejected === 0) return true;
    return (ejected + 1) * 100 <= this.#plan.outlier.maxEjectionPercent * this.#endpoints.size;
  }

  /** Works out the choice set again and arms the timer of the next local ejection's end. */
  #rebalance(): void {
    const now = Date.now();
    const all = [...this.#endpoints.values()];
    let priority = Infinity;
    for (const e of all) if (e.usable(now) && e.priority < priority) priority = e.priority;
    // Nothing usable: the lowest priority is where panic would send requests.
    if (priority === Infinity) for (const e of all) priority = Math.min(priority, e.priority);
    const group = all.filter((e) => e.priority === priority);
    const usable = group.filter((e) => e.usable(now));
    const panic = usable.length < this.#plan.panicThreshold * group.length;
    this.#choice = panic ? group : usable;
    this.#balancer.reset(this.#choice);

    clearTimeout(this.#lapse);
    this.#lapse = undefined;
    let next = Infinity;
    for (const e of all) if (e.ejectedUntil > now) next = Math.min(next, e.ejectedUntil);
    if (next !== Infinity) {
      this.#lapse = setTimeout(() => this.#rebalance(), next - now + 1);
      this.#lapse.unref();
    }
  }
}
