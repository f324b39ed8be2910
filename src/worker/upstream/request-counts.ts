import type { Counter } from 'prom-client';

/*
 * `portico_upstream_requests_total` without label work on the request path: each endpoint
 * counts into a plain array, and the counter takes the increments over when it is collected
 * (a scrape, the drain's last snapshot). prom-client's label children would hash their
 * labels on every `inc`.
 */

export type UpstreamRequests = Counter<'upstream' | 'endpoint' | 'status_class'>;

/**
 * Label values of `status_class`, by `status / 100`; slot 0 is `error` (no answer came). A 1xx
 * never ends an exchange here (upgrades are not counted), so it has no series of its own.
 */
const CLASSES = ['error', 'error', '2xx', '3xx', '4xx', '5xx'] as const;

/** One endpoint's counts in this worker, shared by every pool of its upstream (old and new settings across a reload). */
export class EndpointCounts {
  /** By status class slot; the request path increments these. */
  readonly counts = new Float64Array(CLASSES.length);
  readonly #flushed = new Float64Array(CLASSES.length);
  readonly #labels: Record<'upstream' | 'endpoint' | 'status_class', string>[];
  /** Pools counting into it: the series goes with the last. */
  pools = 0;

  constructor(upstream: string, endpoint: string) {
    this.#labels = CLASSES.map((c) => ({ upstream, endpoint, status_class: c }));
  }

  /** Counts one exchange: `status` of its answer, or 0 when none came. */
  count(status: number): void {
    const slot = status >= 100 && status < 600 ? (status / 100) | 0 : 0;
    (this.counts[slot] as number)++;
  }

  flush(counter: UpstreamRequests): void {
    for (let i = 0; i < CLASSES.length; i++) {
      const delta = (this.counts[i] as number) - (this.#flushed[i] as number);
      // `inc(…, 0)` creates the series at zero: an endpoint shows from the first scrape on.
      if (delta > 0 || i !== 1) counter.inc(this.#labels[i] as Record<string, string>, delta);
      this.#flushed[i] = this.counts[i] as number;
    }
  }

  remove(counter: UpstreamRequests): void {
    for (const labels of this.#labels) counter.remove(labels);
  }
}

const SERIES = new WeakMap<UpstreamRequests, Map<string, EndpointCounts>>();

/** The counts of `endpoint` of `upstream` for a pool that now counts into them. */
export function acquireCounts(
  requests: UpstreamRequests,
  upstream: string,
  endpoint: string,
): EndpointCounts {
  let byKey = SERIES.get(requests);
  if (byKey === undefined) {
    byKey = new Map();
    SERIES.set(requests, byKey);
  }
  const key = `${upstream}\u0000${endpoint}`;
  let counts = byKey.get(key);
  if (counts === undefined) {
    counts = new EndpointCounts(upstream, endpoint);
    byKey.set(key, counts);
  }
  counts.pools++;
  return counts;
}

/** A pool stopped counting into `counts`; the last one removes the series. */
export function releaseCounts(requests: UpstreamRequests, upstream: string, endpoint: string): void {
  const byKey = SERIES.get(requests);
  const key = `${upstream}\u0000${endpoint}`;
  const counts = byKey?.get(key);
  if (byKey === undefined || counts === undefined || --counts.pools > 0) return;
  byKey.delete(key);
  counts.remove(requests);
}

/** The counter's `collect`: adds what every endpoint counted since the last collection. */
export function flushUpstreamRequests(requests: UpstreamRequests): void {
  for (const counts of SERIES.get(requests)?.values() ?? []) counts.flush(requests);
}
