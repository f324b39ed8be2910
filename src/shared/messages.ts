import type { Registry } from 'prom-client';
import { isPlan } from './plan/check.js';
import type { Plan } from './plan/types.js';

/*
 * Messages between the primary and its workers over the cluster IPC channel. A typed union,
 * checked where it arrives: anything else on the channel is ignored, never trusted.
 */

/**
 * One metric of a worker's registry as prom-client's `getMetricsAsJSON()` returns it; the
 * primary merges these with `AggregatorRegistry.aggregate`.
 */
export interface MetricSnapshot {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  /**
   * `null` only on the wire: IPC serialises with JSON, where NaN (e.g. the event-loop lag
   * mean before any sample) becomes `null`; the primary turns it back into NaN.
   */
  values: { value: number | null; labels: Record<string, string | number>; metricName?: string }[];
}

/**
 * A registry's metrics as a snapshot. prom-client's typings declare `type` as a numeric enum,
 * but at run time it is the string (`'counter'`…) the Prometheus format uses.
 */
export async function snapshotOf(registry: Registry): Promise<MetricSnapshot[]> {
  return (await registry.getMetricsAsJSON()) as unknown as MetricSnapshot[];
}

export type PrimaryToWorker =
  /** The answer to `portico:plan-request`: what the worker is to run. */
  | { type: 'portico:plan'; plan: Plan }
  /** Reload, phase 1: build a handler tree from `plan` beside the running one; do not switch yet. */
  | { type: 'portico:plan-prepare'; id: number; plan: Plan }
  /** Reload, phase 2: every worker prepared; serve new requests from the tree of reload `id`. */
  | { type: 'portico:plan-commit'; id: number }
  /** Reload `id` failed somewhere: drop its tree and keep serving the running one. */
  | { type: 'portico:plan-abort'; id: number }
  | { type: 'portico:shutdown' }
  /** A reload gave this worker's slot to a new worker: drain, leaving kept-alive clients time to go. */
  | { type: 'portico:replaced' }
  /**
   * Answers `portico:listener-closed`: node:cluster hands this worker no more connections,
   * and every one it handed before has arrived (the channel keeps order).
   */
  | { type: 'portico:listener-released' }
  /** Asks a worker for its registry; answered with `portico:metrics-snapshot` and the same id. */
  | { type: 'portico:metrics-collect'; id: number }
  /** Answers a worker's `portico:metrics-scrape`: the merged exposition text, or why not. */
  | { type: 'portico:metrics-text'; id: number; text: string; contentType: string }
  | { type: 'portico:metrics-text'; id: number; error: string }
  /** The dashboard's periodic pull (every few seconds, never per request); see `DashboardSnapshot`. */
  | { type: 'portico:dashboard-collect'; id: number };

export type WorkerToPrimary =
  /**
   * The worker's entry reached `start()` and listens for its plan. The worker asks rather
   * than the primary sending at fork: a message that arrives before the entry file installs
   * its listener is emitted to nobody and lost.
   */
  | { type: 'portico:plan-request' }
  | { type: 'portico:ready'; port: number }
  /** A replaced worker closed its listener (node:cluster told the primary just before this). */
  | { type: 'portico:listener-closed' }
  /** The tree of reload `id` is built and waits for the commit. */
  | { type: 'portico:plan-prepared'; id: number }
  /** The tree of reload `id` could not be built; nothing changed in this worker. */
  | { type: 'portico:plan-failed'; id: number; error: string }
  /** This worker now serves new requests from the tree of reload `id`. */
  | { type: 'portico:plan-committed'; id: number }
  /** The worker's server could not listen (EADDRINUSE…): the primary stops the instance. */
  | { type: 'portico:listen-failed'; host: string; port: number; code: string }
  /** A worker's registry: the answer to `portico:metrics-collect`, or its last one (id null) when draining. */
  | { type: 'portico:metrics-snapshot'; id: number | null; metrics: MetricSnapshot[] }
  /** `GET /metrics` reached this worker: it asks the primary for the cluster-wide view. */
  | { type: 'portico:metrics-scrape'; id: number }
  /** The answer to `portico:dashboard-collect`. */
  | ({ type: 'portico:dashboard-snapshot'; id: number } & DashboardSnapshot);

/** A gateway-generated 5xx as the dashboard lists it: no headers, query string or token. */
export interface RecentError {
  /** Unix ms. */
  time: number;
  /** The matched route's pattern, or `(unmatched)`. */
  route: string;
  method: string;
  status: number;
  code: string;
  request_id: string;
}

/** One route pattern and method's cumulative counts, as the `metrics` middleware keeps them. */
export interface RouteCounts {
  path: string;
  method: string;
  /** Requests answered, by status code. */
  statuses: Record<string, number>;
  /** Cumulative latency-histogram counts: one per bound of `DashboardSnapshot.bounds`, then +Inf. */
  buckets: number[];
}

/** What a worker reports to the dashboard's pull. */
export interface DashboardSnapshot {
  /** The latency histogram's finite upper bounds, in seconds, ascending. */
  bounds: number[];
  /** Per-route counters of the `metrics` middleware (empty when metrics are off). */
  routes: RouteCounts[];
  /** Errors since the previous pull (bounded by the worker's ring). */
  errors: RecentError[];
  /** Event-loop delay since the previous pull: p99 in ms (null: no sample yet). */
  loop_delay_ms: number | null;
  /** Small facts other modules publish (tracing export state…), one key each. */
  status: Record<string, string | number | boolean | null>;
}

type Fields = Record<string, unknown>;

const isObject = (value: unknown): value is Fields => typeof value === 'object' && value !== null;

function isMetricSnapshot(value: unknown): value is MetricSnapshot {
  return (
    isObject(value) &&
    typeof value.name === 'string' &&
    typeof value.type === 'string' &&
    Array.isArray(value.values) &&
    value.values.every(
      (v) => isObject(v) && (typeof v.value === 'number' || v.value === null) && isObject(v.labels),
    )
  );
}

const isNumbers = (value: unknown): value is number[] =>
  Array.isArray(value) && value.every((v) => typeof v === 'number');

function isRouteCounts(value: unknown): value is RouteCounts {
  return (
    isObject(value) &&
    typeof value.path === 'string' &&
    typeof value.method === 'string' &&
    isObject(value.statuses) &&
    Object.values(value.statuses).every((v) => typeof v === 'number') &&
    isNumbers(value.buckets)
  );
}

function isRecentError(value: unknown): value is RecentError {
  return (
    isObject(value) &&
    typeof value.time === 'number' &&
    typeof value.route === 'string' &&
    typeof value.method === 'string' &&
    typeof value.status === 'number' &&
    typeof value.code === 'string' &&
    typeof value.request_id === 'string'
  );
}

export function isPrimaryToWorker(message: unknown): message is PrimaryToWorker {
  if (!isObject(message)) return false;
  switch (message.type) {
    case 'portico:plan':
      return isPlan(message.plan);
    case 'portico:plan-prepare':
      return typeof message.id === 'number' && isPlan(message.plan);
    case 'portico:plan-commit':
    case 'portico:plan-abort':
      return typeof message.id === 'number';
    case 'portico:shutdown':
    case 'portico:replaced':
    case 'portico:listener-released':
      return true;
    case 'portico:metrics-collect':
    case 'portico:dashboard-collect':
      return typeof message.id === 'number';
    case 'portico:metrics-text':
      return (
        typeof message.id === 'number' &&
        ((typeof message.text === 'string' && typeof message.contentType === 'string') ||
          typeof message.error === 'string')
      );
    default:
      return false;
  }
}

export function isWorkerToPrimary(message: unknown): message is WorkerToPrimary {
  if (!isObject(message)) return false;
  switch (message.type) {
    case 'portico:plan-request':
    case 'portico:listener-closed':
      return true;
    case 'portico:ready':
      return typeof message.port === 'number';
    case 'portico:plan-prepared':
    case 'portico:plan-committed':
      return typeof message.id === 'number';
    case 'portico:plan-failed':
      return typeof message.id === 'number' && typeof message.error === 'string';
    case 'portico:listen-failed':
      return (
        typeof message.host === 'string' &&
        typeof message.port === 'number' &&
        typeof message.code === 'string'
      );
    case 'portico:metrics-snapshot':
      return (
        (message.id === null || typeof message.id === 'number') &&
        Array.isArray(message.metrics) &&
        message.metrics.every(isMetricSnapshot)
      );
    case 'portico:metrics-scrape':
      return typeof message.id === 'number';
    case 'portico:dashboard-snapshot':
      return (
        typeof message.id === 'number' &&
        isNumbers(message.bounds) &&
        Array.isArray(message.routes) &&
        message.routes.every(isRouteCounts) &&
        Array.isArray(message.errors) &&
        message.errors.every(isRecentError) &&
        (message.loop_delay_ms === null || typeof message.loop_delay_ms === 'number') &&
        isObject(message.status)
      );
    default:
      return false;
  }
}
