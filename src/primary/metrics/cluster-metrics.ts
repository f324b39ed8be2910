import cluster from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, type Registry } from 'prom-client';
import { type MetricSnapshot, type PrimaryToWorker, snapshotOf } from '../../shared/messages.js';

/*
 * The cluster-wide metrics view, owned by the primary. Each scrape asks every ready worker
 * for its registry and merges the answers with prom-client's `AggregatorRegistry.aggregate`
 * (sums for counters, histograms and most gauges).
 *
 * prom-client's own `clusterMetrics()` is not used: it asks every forked worker, including
 * one still booting that cannot answer yet, and then fails the whole scrape after 5 s; and it
 * forgets a dead worker's counts, so cluster counters would drop and Prometheus would read
 * the drop as a reset (and count everything since as new increase). Here:
 * - only workers that reported ready are asked, with a short bound; a late worker
 *   contributes its previous snapshot, which is stale but never makes a counter go back;
 * - when a worker exits, its last counter and histogram values are folded into a "retired"
 *   total that stays in the sum, so cluster counters never decrease. A worker that drains
 *   sends its final snapshot first (exact); one that crashes loses what it counted since the
 *   last scrape. Its gauges (in-flight, memory) leave with it.
 */

const COLLECT_TIMEOUT_MS = 2_000;

type Value = MetricSnapshot['values'][number];

function seriesKey(metric: MetricSnapshot, value: Value): string {
  const labels = Object.keys(value.labels)
    .sort()
    .map((k) => `${k}=${String(value.labels[k])}`)
    .join(',');
  return `${metric.name}\u0000${value.metricName ?? ''}\u0000${labels}`;
}

export class ClusterMetrics {
  /** The latest snapshot of each live worker, by cluster worker id. */
  readonly #latest = new Map<number, MetricSnapshot[]>();
  readonly #ready = new Set<number>();
  /** Counter and histogram values of workers that are gone, summed per series. */
  readonly #retired = new Map<string, { metric: MetricSnapshot; value: Value }>();
  readonly #waiting = new Map<number, { pending: Set<number>; done(): void }>();
  #gathering: Promise<string> | undefined;
  #nextId = 0;

  constructor(
    private readonly primary: Registry,
    private readonly logger: Logger,
    private readonly timeoutMs = COLLECT_TIMEOUT_MS,
  ) {}

  readonly contentType = AggregatorRegistry.PROMETHEUS_CONTENT_TYPE;

  /** A worker finished starting: from now on it is asked at each scrape. */
  ready(workerId: number): void {
    this.#ready.add(workerId);
  }

  /** A worker's registry arrived: the answer to collection `id`, or its final one (`null`). */
  snapshot(workerId: number, id: number | null, metrics: MetricSnapshot[]): void {
    for (const metric of metrics) for (const value of metric.values) value.value ??= Number.NaN;
    this.#latest.set(workerId, metrics);
    if (id === null) {
      if (cluster.workers?.[workerId] === undefined) this.exited(workerId);
      return;
    }
    const waiting = this.#waiting.get(id);
    if (waiting?.pending.delete(workerId) && waiting.pending.size === 0) waiting.done();
  }

  /** A worker is gone: keep its counters in the sum, drop its gauges. */
  exited(workerId: number): void {
    this.#ready.delete(workerId);
    for (const waiting of this.#waiting.values()) {
      if (waiting.pending.delete(workerId) && waiting.pending.size === 0) waiting.done();
    }
    const last = this.#latest.get(workerId);
    this.#latest.delete(workerId);
    if (!last) return;
    for (const metric of last) {
      if (metric.type !== 'counter' && metric.type !== 'histogram') continue;
      for (const value of metric.values) {
        const key = seriesKey(metric, value);
        const seen = this.#retired.get(key);
        if (seen) seen.value = { ...seen.value, value: (seen.value.value ?? 0) + (value.value ?? 0) };
        else this.#retired.set(key, { metric, value });
      }
    }
  }

  /** The merged exposition text. Concurrent scrapes share one collection. */
  collect(): Promise<string> {
    this.#gathering ??= this.#gather().finally(() => {
      this.#gathering = undefined;
    });
    return this.#gathering;
  }

  async #gather(): Promise<string> {
    const id = this.#nextId++;
    const targets = [...this.#ready].filter((wid) => cluster.workers?.[wid]?.isConnected());
    await new Promise<void>((resolve) => {
      const pending = new Set(targets);
      if (pending.size === 0) {
        resolve();
        return;
      }
      const timer = setTimeout(() => {
        this.logger.warn(
          { workers: [...pending] },
          'metrics: workers did not answer in time; using their last snapshot',
        );
        done();
      }, this.timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.#waiting.delete(id);
        resolve();
      };
      this.#waiting.set(id, { pending, done });
      const message: PrimaryToWorker = { type: 'portico:metrics-collect', id };
      for (const wid of targets) {
        try {
          cluster.workers?.[wid]?.send(message);
        } catch {
          pending.delete(wid); // the channel closed in between; its exit will retire it
        }
      }
      if (pending.size === 0) done();
    });
    const parts: MetricSnapshot[][] = [...this.#latest.values(), this.#retiredSnapshot()];
    parts.push(await snapshotOf(this.primary));
    return AggregatorRegistry.aggregate(parts.map(keepPerWorkerSeries)).metrics();
  }

  #retiredSnapshot(): MetricSnapshot[] {
    const byName = new Map<string, MetricSnapshot>();
    for (const { metric, value } of this.#retired.values()) {
      let out = byName.get(metric.name);
      if (!out) {
        out = { ...metric, values: [] };
        byName.set(metric.name, out);
      }
      out.values.push(value);
    }
    return [...byName.values()];
  }
}

/**
 * prom-client omits `process_start_time_seconds` when merging (its aggregator is `omit`).
 * Our default metrics carry a `worker` label, so each worker's series is distinct and the
 * per-worker value is meaningful: keep it.
 */
function keepPerWorkerSeries(metrics: MetricSnapshot[]): MetricSnapshot[] {
  return metrics.map((m) => (m.aggregator === 'omit' ? { ...m, aggregator: 'first' } : m));
}
