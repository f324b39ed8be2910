import type { MetricSnapshot } from '../../shared/messages.js';

/*
 * Per-route traffic over the last 15 minutes, in 5 s samples, built from the workers'
 * cumulative metrics (the `metrics` middleware's `gateway_requests_total` and
 * `gateway_request_duration_seconds`): each pull is turned into increments per worker, so a
 * worker that restarts (its counters back at 0) or leaves costs nothing but its last few
 * seconds. Memory: paths × SAMPLES × (3 + buckets) numbers, and one previous value per
 * worker series; paths no longer routed are dropped.
 */

export const SAMPLE_SECONDS = 5;
export const SAMPLES = 180; // 15 min
/** The "last minute" figures: rates and latency percentiles. */
const MINUTE_SAMPLES = 60 / SAMPLE_SECONDS;

interface Sample {
  requests: number;
  c4xx: number;
  c5xx: number;
  /** Increments of the histogram's cumulative buckets, by `le` (ascending; the last is +Inf). */
  buckets: number[];
}

interface PathSeries {
  samples: Sample[];
  /** What arrived since the last tick. */
  pending: Sample;
  /** The `le` bounds the buckets hold, ascending (+Inf last). */
  bounds: number[];
}

export interface RouteTraffic {
  requests_per_second: number;
  errors_4xx_per_second: number;
  errors_5xx_per_second: number;
  /** Over the last minute; null when no request finished in it. */
  p50_ms: number | null;
  p99_ms: number | null;
  /** Requests and 5xx per sample, oldest first (at most 180: 15 min). */
  requests: number[];
  errors_5xx: number[];
}

const empty = (n: number): Sample => ({
  requests: 0,
  c4xx: 0,
  c5xx: 0,
  buckets: new Array<number>(n).fill(0),
});

export class TrafficSeries {
  readonly #paths = new Map<string, PathSeries>();
  /** Last cumulative value per worker and series. */
  readonly #previous = new Map<number, Map<string, number>>();
  #ticks = 0;

  /** A worker's cumulative metrics: their increments since its previous report count now. */
  ingest(worker: number, metrics: readonly MetricSnapshot[]): void {
    let previous = this.#previous.get(worker);
    if (!previous) {
      previous = new Map();
      this.#previous.set(worker, previous);
    }
    const seen = new Map<string, number>();
    for (const metric of metrics) {
      if (metric.name === 'gateway_requests_total') {
        for (const { value, labels } of metric.values) {
          const key = `r\0${labels.method}\0${labels.path}\0${labels.status}`;
          const delta = increment(previous, seen, key, value);
          if (delta === 0) continue;
          const pending = this.#series(String(labels.path)).pending;
          pending.requests += delta;
          const status = Number(labels.status);
          if (status >= 400 && status < 500) pending.c4xx += delta;
          else if (status >= 500) pending.c5xx += delta;
        }
      } else if (metric.name === 'gateway_request_duration_seconds') {
        for (const { value, labels, metricName } of metric.values) {
          if (metricName !== 'gateway_request_duration_seconds_bucket') continue;
          const key = `d\0${labels.method}\0${labels.path}\0${labels.le}`;
          const delta = increment(previous, seen, key, value);
          if (delta === 0) continue;
          const series = this.#series(String(labels.path));
          const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
          let at = series.bounds.indexOf(le);
          if (at === -1) at = addBound(series, le);
          (series.pending.buckets[at] as number) += delta;
        }
      }
    }
    this.#previous.set(worker, seen);
  }

  /** A worker is gone: its series start again from 0 if the id ever comes back. */
  forget(worker: number): void {
    this.#previous.delete(worker);
  }

  /** Closes the current sample of every path; paths outside `routed` are dropped. */
  tick(routed: ReadonlySet<string>): void {
    this.#ticks++;
    for (const [path, series] of this.#paths) {
      if (!routed.has(path)) {
        this.#paths.delete(path);
        continue;
      }
      series.samples.push(series.pending);
      if (series.samples.length > SAMPLES) series.samples.shift();
      series.pending = empty(series.bounds.length);
    }
  }

  /** Samples taken so far (bounded by the window): how much history the figures rest on. */
  get ticks(): number {
    return Math.min(this.#ticks, SAMPLES);
  }

  /** The figures of `path`; zeros when nothing was counted for it yet. */
  view(path: string): RouteTraffic {
    const series = this.#paths.get(path);
    const samples = series?.samples ?? [];
    const minute = samples.slice(-MINUTE_SAMPLES);
    // A route first seen 20 s ago has 20 s of history, not a minute.
    const seconds = Math.max(1, Math.min(MINUTE_SAMPLES, this.#ticks)) * SAMPLE_SECONDS;
    const sum = (pick: (s: Sample) => number) => minute.reduce((total, s) => total + pick(s), 0);
    const buckets = (series?.bounds ?? []).map((_, i) => sum((s) => s.buckets[i] ?? 0));
    const bounds = series?.bounds ?? [];
    return {
      requests_per_second: sum((s) => s.requests) / seconds,
      errors_4xx_per_second: sum((s) => s.c4xx) / seconds,
      errors_5xx_per_second: sum((s) => s.c5xx) / seconds,
      p50_ms: quantileMs(0.5, bounds, buckets),
      p99_ms: quantileMs(0.99, bounds, buckets),
      requests: samples.map((s) => s.requests),
      errors_5xx: samples.map((s) => s.c5xx),
    };
  }

  #series(path: string): PathSeries {
    let series = this.#paths.get(path);
    if (!series) {
      // A path's samples start with the pull that first saw it.
      series = { samples: [], pending: empty(0), bounds: [] };
      this.#paths.set(path, series);
    }
    return series;
  }
}

function increment(
  previous: Map<string, number>,
  seen: Map<string, number>,
  key: string,
  value: number | null,
): number {
  const now = value ?? 0;
  seen.set(key, now);
  const before = previous.get(key) ?? 0;
  // Lower than before: the counter started again (not expected within one worker, but never negative).
  return now >= before ? now - before : now;
}

/** Keeps `bounds` sorted; shifts every sample's buckets to match (rare: first pulls only). */
function addBound(series: PathSeries, le: number): number {
  let at = series.bounds.findIndex((b) => b > le);
  if (at === -1) at = series.bounds.length;
  series.bounds.splice(at, 0, le);
  for (const sample of [...series.samples, series.pending]) {
    // Cumulative buckets: a new bound's count is at least the one below it; 0 is fine for
    // past samples (the bound existed but was not reported: nothing to interpolate).
    sample.buckets.splice(at, 0, 0);
  }
  return at;
}

/**
 * The `q` quantile of a histogram from increments of its cumulative buckets, interpolated
 * linearly inside the bucket it falls in (as Prometheus' `histogram_quantile`). Null when
 * empty; the highest finite bound when it falls in +Inf.
 */
export function quantileMs(
  q: number,
  bounds: readonly number[],
  cumulative: readonly number[],
): number | null {
  const total = cumulative[cumulative.length - 1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (let i = 0; i < bounds.length; i++) {
    const bound = bounds[i] as number;
    const count = cumulative[i] ?? 0;
    if (count >= rank) {
      if (bound === Infinity) return lowerBound * 1000;
      const within = count - lowerCount;
      const fraction = within > 0 ? (rank - lowerCount) / within : 1;
      return (lowerBound + (bound - lowerBound) * fraction) * 1000;
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound * 1000;
}
