import type { RouteCounts } from '../../shared/messages.js';

/*
 * Per-route traffic over the last 15 minutes, in 5 s samples, built from the workers'
 * cumulative counts (the `metrics` middleware's `gateway_requests_total` and
 * `gateway_request_duration_seconds`, folded by route and method in the worker): each pull
 * is turned into increments per worker, so a
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
  /** The histogram's upper bounds in seconds, ascending, +Inf last. */
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

  /** A worker's cumulative counts: their increments since its previous report count now. */
  ingest(worker: number, bounds: readonly number[], routes: readonly RouteCounts[]): void {
    const previous = this.#previous.get(worker) ?? new Map<string, number>();
    const seen = new Map<string, number>();
    for (const { path, method, statuses, buckets } of routes) {
      const series = this.#series(path, bounds);
      const pending = series.pending;
      for (const status in statuses) {
        const delta = increment(previous, seen, `${method} ${path} ${status}`, statuses[status] as number);
        pending.requests += delta;
        const code = Number(status);
        if (code >= 400 && code < 500) pending.c4xx += delta;
        else if (code >= 500) pending.c5xx += delta;
      }
      if (buckets.length !== series.bounds.length) continue; // not this series' histogram
      for (let i = 0; i < buckets.length; i++)
        (pending.buckets[i] as number) += increment(
          previous,
          seen,
          `${method} ${path} le${i}`,
          buckets[i] as number,
        );
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

  #series(path: string, bounds: readonly number[]): PathSeries {
    let series = this.#paths.get(path);
    if (!series) {
      // A path's samples start with the pull that first saw it.
      const all = [...bounds, Infinity];
      series = { samples: [], pending: empty(all.length), bounds: all };
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
