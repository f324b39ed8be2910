import type { Counter, Histogram } from 'prom-client';
import type { UpstreamErrorKind, UpstreamObserver } from '../../proxy/forwarder.js';
import { createWorkerInstruments, UNMATCHED_PATH, type WorkerInstruments } from './instruments.js';
import type { ObservationHooks, RateLimitDecision } from '../hooks.js';

// Auth reasons come from code, but a bound keeps a caller's mistake from growing series forever.
const MAX_AUTH_REASONS = 32;

/** Status codes an HTTP response can carry; one pre-bound counter child per code seen. */
const STATUS_SLOTS = 600;

/**
 * The request-level instruments of one route, with label children bound once per
 * (method, status) and reused, so the hot path does no label work.
 */
export class RouteMetrics {
  readonly #requests = new Map<string, (Counter.Internal | undefined)[]>();
  readonly #durations = new Map<string, Histogram.Internal<'method' | 'path'>>();
  readonly #upstreamDuration: Histogram.Internal<'path'>;
  readonly #upstreamErrors = new Map<UpstreamErrorKind, Counter.Internal>();
  /** Feeds the upstream histogram and error counter from the route's forwarder. */
  readonly upstream: UpstreamObserver;

  constructor(
    private readonly instruments: WorkerInstruments,
    private readonly path: string,
  ) {
    this.#upstreamDuration = instruments.upstreamDuration.labels(path);
    this.upstream = {
      response: (_req, _status, seconds) => this.#upstreamDuration.observe(seconds),
      end: (_req, outcome) => {
        if (outcome === 'ok' || outcome === 'aborted') return;
        let child = this.#upstreamErrors.get(outcome);
        if (!child) {
          child = this.instruments.upstreamErrors.labels(this.path, outcome);
          this.#upstreamErrors.set(outcome, child);
        }
        child.inc();
      },
    };
  }

  /** Counts one finished request and observes its duration. */
  record(method: string, status: number, seconds: number): void {
    let byStatus = this.#requests.get(method);
    let duration = this.#durations.get(method);
    if (byStatus === undefined || duration === undefined) {
      byStatus = new Array<Counter.Internal | undefined>(STATUS_SLOTS);
      duration = this.instruments.duration.labels(method, this.path);
      this.#requests.set(method, byStatus);
      this.#durations.set(method, duration);
    }
    const slot = status > 0 && status < STATUS_SLOTS ? status : 0;
    let counter = byStatus[slot];
    if (counter === undefined) {
      counter = this.instruments.requests.labels(method, this.path, String(slot));
      byStatus[slot] = counter;
    }
    counter.inc();
    duration.observe(seconds);
  }

  get inFlight() {
    return this.instruments.inFlight;
  }
}

/** One worker's metrics: its registry, per-route instruments, and the hooks the built-ins report through. */
export class WorkerMetrics implements ObservationHooks {
  readonly instruments: WorkerInstruments;
  readonly #routes = new Map<string, RouteMetrics>();
  // Per decision and policy: a handful of children (all, burst, ban and five quota periods).
  readonly #decisions = new Map<string, () => void>();
  readonly #authReasons = new Map<string, Counter.Internal>();

  constructor(workerLabel: string) {
    this.instruments = createWorkerInstruments(workerLabel);
  }

  /** The instruments of a route pattern (shared by every chain on the same pattern). */
  route(path: string): RouteMetrics {
    let route = this.#routes.get(path);
    if (!route) {
      route = new RouteMetrics(this.instruments, path);
      this.#routes.set(path, route);
    }
    return route;
  }

  /** Where requests that matched no route are counted. */
  get unmatched(): RouteMetrics {
    return this.route(UNMATCHED_PATH);
  }

  rateLimitCounter(decision: RateLimitDecision, policy: string): () => void {
    const id = `${decision}|${policy}`;
    let count = this.#decisions.get(id);
    if (count === undefined) {
      const child = this.instruments.rateLimitDecisions.labels(decision, policy);
      count = () => child.inc();
      this.#decisions.set(id, count);
    }
    return count;
  }

  authFailure(reason: string): void {
    let child = this.#authReasons.get(reason);
    if (!child) {
      if (this.#authReasons.size >= MAX_AUTH_REASONS) reason = 'other';
      child = this.#authReasons.get(reason) ?? this.instruments.authFailures.labels(reason);
      this.#authReasons.set(reason, child);
    }
    child.inc();
  }

  rateLimitStoreUp(store: string, up: boolean): void {
    this.instruments.rateLimitStoreUp.labels(store).set(up ? 1 : 0);
  }

  redisUp(role: 'master' | 'sentinel', up: boolean): void {
    this.instruments.redisUp.labels(role).set(up ? 1 : 0);
  }

  redisFailover(): void {
    this.instruments.redisFailovers.inc();
  }
}
