import type { ServerResponse } from 'node:http';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Registry } from 'prom-client';
import { type GatewayError, observeServerErrors } from '../shared/errors.js';
import {
  type DashboardSnapshot,
  isPrimaryToWorker,
  type MetricSnapshot,
  type RecentError,
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
/** The per-route metrics the dashboard reads (the metrics middleware's). */
const DASHBOARD_METRICS = ['gateway_requests_total', 'gateway_request_duration_seconds'];

/**
 * Facts other worker modules publish for the dashboard's overview: one key per fact, set when
 * it changes (e.g. `dashboardStatus.tracing_export = 'failing'`). Sent at each pull.
 */
export const dashboardStatus: DashboardSnapshot['status'] = {};

let ring: RecentError[] = [];
let registry: Registry | undefined;
let installed = false;

/** The worker's metrics registry (set when metrics are on): its per-route series feed the dashboard. */
export function dashboardMetrics(metrics: Registry): void {
  registry = metrics;
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

async function selected(): Promise<MetricSnapshot[]> {
  if (registry === undefined) return [];
  const out: MetricSnapshot[] = [];
  for (const name of DASHBOARD_METRICS) {
    const metric = registry.getSingleMetric(name);
    if (metric) out.push((await metric.get()) as unknown as MetricSnapshot);
  }
  return out;
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
    void selected().then((metrics) => {
      const answer: WorkerToPrimary = {
        type: 'portico:dashboard-snapshot',
        id: message.id,
        metrics,
        errors,
        loop_delay_ms: loop,
        status: dashboardStatus,
      };
      if (process.connected) process.send?.(answer);
    });
  });
}
