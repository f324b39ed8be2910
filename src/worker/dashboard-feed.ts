import type { ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { MetricValue, Registry } from 'prom-client';
import { type GatewayError, observeServerErrors } from '../shared/errors.js';
import {
  type DashboardSnapshot,
  isPrimaryToWorker,
  type RecentError,
  type RouteCounts,
  type WorkerToPrimary,
} from '../shared/messages.js';
import { contextIfAny } from './context.js';

/*
 * The worker's side of the dashboard (see src/primary/dashboard/). The primary pulls every few
 * seconds; nothing here runs per request except on the error path (a 5xx goes into a ring).
 * Between pulls the ring holds at most RING_SIZE errors: a burst keeps its newest.
 */

const RING_SIZE = 100;
const RESOLUTION_MS = 20;

/**
 * Facts other worker modules publish for the dashboard's overview: one key per fact, set when
 * it changes (e.g. `dashboardStatus.tracing_export = 'failing'`). Sent at each pull.
 */
export const dashboardStatus: DashboardSnapshot['status'] = {};

let ring: RecentError[] = [];
let source: { registry: Registry; bounds: number[] } | undefined;
let installed = false;

/**
 * The worker's metrics registry (set when metrics are on) and its latency buckets: the
 * `metrics` middleware's per-route series feed the dashboard.
 */
export function dashboardMetrics(registry: Registry, bounds: readonly number[]): void {
  source = { registry, bounds: [...bounds] };
}

function recordError(res: ServerResponse, error: GatewayError): void {
  const req = res.req as ServerResponse['req'] | undefined;
  const ctx = req ? contextIfAny(req) : undefined;
  if (ring.length >= RING_SIZE) ring.shift();
  const id = res.getHeader('x-request-id');
  ring.push({
    time: Date.now(),
    route: ctx?.route ?? '(unmatched)',
    method: req?.method ?? '',
    status: error.status,
    code: error.code,
    request_id: typeof id === 'string' ? id : (ctx?.requestId ?? ''),
  });
}

/**
 * The request counters and latency histograms by route and method, folded from prom-client's
 * labelled values into one small record each (about 5 % of the size of those values' JSON).
 */
export async function routeCounts(): Promise<RouteCounts[]> {
  if (source === undefined) return [];
  const { registry, bounds } = source;
  const byRoute = new Map<string, RouteCounts>();
  const entry = (labels: MetricValue<string>['labels']) => {
    const path = String(labels.path);
    const method = String(labels.method);
    const key = `${method} ${path}`;
    let counts = byRoute.get(key);
    if (!counts) {
      counts = { path, method, statuses: {}, buckets: new Array<number>(bounds.length + 1).fill(0) };
      byRoute.set(key, counts);
    }
    return counts;
  };
  const requests = await registry.getSingleMetric('gateway_requests_total')?.get();
  for (const { value, labels } of requests?.values ?? [])
    entry(labels).statuses[String(labels.status)] = value;
  const durations = await registry.getSingleMetric('gateway_request_duration_seconds')?.get();
  for (const { value, labels, metricName } of (durations?.values ?? []) as (MetricValue<string> & {
    metricName?: string;
  })[]) {
    if (metricName !== 'gateway_request_duration_seconds_bucket') continue;
    const at = labels.le === '+Inf' ? bounds.length : bounds.indexOf(Number(labels.le));
    if (at !== -1) entry(labels).buckets[at] = value;
  }
  return [...byRoute.values()];
}

/** Answers the primary's `portico:dashboard-collect`; once per worker. */
export function installDashboardFeed(): void {
  if (installed || !process.send) return;
  installed = true;
  observeServerErrors(recordError);
  // A sampling timer, not per-request work: 20 ms resolution is plenty for a "lagging" signal.
  const delay = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  delay.enable();
  process.on('message', (message: unknown) => {
    if (!isPrimaryToWorker(message) || message.type !== 'portico:dashboard-collect') return;
    const errors = ring;
    ring = [];
    // The histogram records each timer turn's full period: the lag is what exceeds the period.
    const loop = delay.count > 0 ? Math.max(0, delay.percentile(99) / 1e6 - RESOLUTION_MS) : null;
    delay.reset();
    void routeCounts().then((routes) => {
      const answer: WorkerToPrimary = {
        type: 'portico:dashboard-snapshot',
        id: message.id,
        bounds: source?.bounds ?? [],
        routes,
        errors,
        loop_delay_ms: loop,
        status: dashboardStatus,
      };
      if (process.connected) process.send?.(answer);
    });
  });
}
