import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { collectProcessMetrics } from '../../../shared/process-metrics.js';
import { type BreakerInstruments, collectBreakerStates } from '../../upstream/breaker.js';
import { flushUpstreamRequests } from '../../upstream/request-counts.js';
import { handshakeErrorCounts } from '../../tls/handshake-errors.js';

/*
 * The metric declarations, in one place: names, help texts, labels and buckets. Every label
 * has a bounded set of values (route patterns, methods, status codes, fixed vocabularies),
 * never raw URLs or client input, so the series count stays bounded.
 */

/** Label value of `path` for requests that matched no route (404, 405, bad path). */
export const UNMATCHED_PATH = '(unmatched)';

/**
 * For a proxy: sub-millisecond (a cache or a 429 answered locally) to tens of seconds (a
 * slow upstream up to the default 30 s route timeout).
 */
export const LATENCY_BUCKETS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
];

/** Every metric name Portico exports itself (default Node metrics aside); the dashboard test reads it. */
export const GATEWAY_METRIC_NAMES = [
  'gateway_requests_total',
  'gateway_request_duration_seconds',
  'gateway_requests_in_flight',
  'gateway_upstream_duration_seconds',
  'gateway_upstream_errors_total',
  'gateway_ratelimit_decisions_total',
  'gateway_ratelimit_store_up',
  'gateway_auth_failures_total',
  'gateway_worker_restarts_total',
  'portico_upstream_requests_total',
  'portico_upstream_overflow_total',
  'portico_circuit_breaker_state',
  'portico_circuit_breaker_trips_total',
  'portico_tls_handshake_errors_total',
  'portico_tls_certificate_expiry_timestamp_seconds',
] as const;

/** The instruments of one worker, registered in its own registry (never the global one). */
export function createWorkerInstruments(workerLabel: string) {
  const registry = new Registry();
  const requests = new Counter({
    name: 'gateway_requests_total',
    help: 'Requests answered, by method, route pattern and status (499: client went away before the response started).',
    labelNames: ['method', 'path', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'gateway_request_duration_seconds',
    help: 'Time from receiving a request to the end of its response, by method and route pattern.',
    labelNames: ['method', 'path'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const inFlight = new Gauge({
    name: 'gateway_requests_in_flight',
    help: 'Requests being handled now (summed over workers).',
    registers: [registry],
  });
  const upstreamDuration = new Histogram({
    name: 'gateway_upstream_duration_seconds',
    help: 'Time from sending a request upstream to receiving its response headers, by route pattern.',
    labelNames: ['path'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [registry],
  });
  const upstreamErrors = new Counter({
    name: 'gateway_upstream_errors_total',
    help: 'Upstream tries that failed, by route pattern and kind (refused, connect_timeout, reset, timeout, other).',
    labelNames: ['path', 'kind'] as const,
    registers: [registry],
  });
  const rateLimitDecisions = new Counter({
    name: 'gateway_ratelimit_decisions_total',
    help: 'Rate-limit decisions: allowed, limited (429), store_error (the store failed; decided by on_store_error).',
    labelNames: ['decision'] as const,
    registers: [registry],
  });
  const rateLimitStoreUp = new Gauge({
    name: 'gateway_ratelimit_store_up',
    help: 'Whether the shared rate-limit store is reachable: 1 when it is from every worker, 0 when any worker runs on its local fallback.',
    labelNames: ['store'] as const,
    // The cluster view is the worst worker's view.
    aggregator: 'min',
    registers: [registry],
  });
  const authFailures = new Counter({
    name: 'gateway_auth_failures_total',
    help: 'Requests refused by the auth middleware, by reason.',
    labelNames: ['reason'] as const,
    registers: [registry],
  });
  const upstreamRequests = new Counter({
    name: 'portico_upstream_requests_total',
    help: 'Exchanges with upstream endpoints, by upstream, endpoint (host:port) and status class (2xx…5xx; error: no answer came). WebSocket upgrades are not counted.',
    labelNames: ['upstream', 'endpoint', 'status_class'] as const,
    registers: [registry],
    // Pools count per endpoint without label work; the counts are taken over when collected.
    collect() {
      flushUpstreamRequests(this);
    },
  });
  const upstreamRetries = new Counter({
    name: 'portico_upstream_retries_total',
    help: 'Retries made, by upstream and reason (connect_failure, reset_before_response, timeout, or the status retried on).',
    labelNames: ['upstream', 'reason'] as const,
    registers: [registry],
  });
  const retryBudgetExhausted = new Counter({
    name: 'portico_upstream_retry_budget_exhausted_total',
    help: "Retries not made because the upstream's retry budget was used up.",
    labelNames: ['upstream'] as const,
    registers: [registry],
  });
  const breaker: BreakerInstruments = {
    overflow: new Counter({
      name: 'portico_upstream_overflow_total',
      help: 'Requests refused with a 503 because an upstream circuit_breaker limit (max_requests, max_pending) was reached in a worker.',
      labelNames: ['upstream', 'limit'] as const,
      registers: [registry],
    }),
    trips: new Counter({
      name: 'portico_circuit_breaker_trips_total',
      help: "Times an upstream's error-ratio breaker opened (in any worker).",
      labelNames: ['upstream'] as const,
      registers: [registry],
    }),
    state: new Gauge({
      name: 'portico_circuit_breaker_state',
      help: "An upstream's breaker state: 0 closed, 1 half-open, 2 open (per worker; the worst worker's).",
      labelNames: ['upstream'] as const,
      aggregator: 'max',
      registers: [registry],
      collect() {
        collectBreakerStates(this);
      },
    }),
  };
  // Issue 15: counted by the TLS server's `tlsClientError` listener, taken over when collected.
  const reported = new Map<string, number>();
  new Counter({
    name: 'portico_tls_handshake_errors_total',
    help: 'TLS handshakes with clients that failed, by reason: protocol_version (older than min_version), no_client_certificate, bad_client_certificate (client_auth: require), plain_http (HTTP sent to the TLS port), other.',
    labelNames: ['reason'] as const,
    registers: [registry],
    collect() {
      for (const [reason, count] of handshakeErrorCounts()) {
        this.inc({ reason }, count - (reported.get(reason) ?? 0));
        reported.set(reason, count);
      }
    },
  });
  // Per worker, so one busy or leaking worker shows.
  collectProcessMetrics(registry, workerLabel);
  return {
    registry,
    requests,
    duration,
    inFlight,
    upstreamDuration,
    upstreamErrors,
    rateLimitDecisions,
    rateLimitStoreUp,
    authFailures,
    upstreamRequests,
    upstreamRetries,
    retryBudgetExhausted,
    breaker,
  };
}

export type WorkerInstruments = ReturnType<typeof createWorkerInstruments>;
