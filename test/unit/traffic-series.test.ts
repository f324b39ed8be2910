import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RouteCounts } from '../../src/shared/messages.js';
import { quantileMs, SAMPLES, TrafficSeries } from '../../src/primary/dashboard/traffic.js';

const BOUNDS = [0.01, 0.1, 1];

/** A worker's cumulative counts for one path: by status, and per bound of BOUNDS then +Inf. */
function counts(
  path: string,
  statuses: Record<number, number>,
  buckets = [0, 0, 0, 0],
): [number[], RouteCounts[]] {
  return [BOUNDS, [{ path, method: 'GET', statuses, buckets }]];
}

const routed = new Set(['/a']);

describe('TrafficSeries', () => {
  test('turns cumulative counts into per-sample increments, per worker', () => {
    const series = new TrafficSeries();
    series.ingest(1, ...counts('/a', { 200: 10 }, [10, 10, 10, 10]));
    series.ingest(2, ...counts('/a', { 200: 5, 502: 1 }, [6, 6, 6, 6]));
    series.tick(routed);
    series.ingest(1, ...counts('/a', { 200: 12, 404: 3 }, [15, 15, 15, 15]));
    series.tick(routed);
    const view = series.view('/a');
    assert.deepEqual(view.requests, [16, 5]);
    assert.deepEqual(view.errors_5xx, [1, 0]);
    // Two samples: 10 s of history.
    assert.equal(view.requests_per_second, 21 / 10);
    assert.equal(view.errors_4xx_per_second, 3 / 10);
    assert.equal(view.errors_5xx_per_second, 1 / 10);
  });

  test('a worker whose counters start again (respawn) counts from 0, never negative', () => {
    const series = new TrafficSeries();
    series.ingest(1, ...counts('/a', { 200: 100 }));
    series.tick(routed);
    series.forget(1);
    series.ingest(1, ...counts('/a', { 200: 4 }));
    series.tick(routed);
    series.ingest(1, ...counts('/a', { 200: 2 })); // lower without forget: taken as a restart
    series.tick(routed);
    assert.deepEqual(series.view('/a').requests, [100, 4, 2]);
  });

  test('keeps 15 minutes of samples and drops paths no longer routed', () => {
    const series = new TrafficSeries();
    for (let i = 1; i <= SAMPLES + 20; i++) {
      series.ingest(1, ...counts('/a', { 200: i }));
      series.tick(routed);
    }
    assert.equal(series.view('/a').requests.length, SAMPLES);
    series.tick(new Set());
    assert.deepEqual(series.view('/a').requests, []);
  });

  test('p50/p99 over the last minute come from bucket increments', () => {
    const series = new TrafficSeries();
    // An old slow minute, then a fast one: only the last minute counts.
    series.ingest(1, ...counts('/a', { 200: 100 }, [0, 0, 100, 100]));
    series.tick(routed);
    for (let i = 0; i < 12; i++) series.tick(routed);
    series.ingest(1, ...counts('/a', { 200: 200 }, [90, 100, 200, 200]));
    series.tick(routed);
    const view = series.view('/a');
    assert.ok(view.p50_ms !== null && Math.abs(view.p50_ms - 10 * (50 / 90)) < 1e-9);
    assert.ok(view.p99_ms !== null && Math.abs(view.p99_ms - (10 + 90 * (9 / 10))) < 1e-9);
  });
});

test('quantileMs interpolates inside the bucket, like histogram_quantile', () => {
  const bounds = [0.01, 0.1, Infinity];
  const cases: [number, number[], number | null][] = [
    [0.5, [0, 0, 0], null],
    [0.5, [10, 10, 10], 5],
    [0.5, [0, 10, 10], 55],
    [0.99, [0, 0, 10], 100], // in +Inf: the highest finite bound
  ];
  for (const [q, counts, expected] of cases) {
    const got = quantileMs(q, bounds, counts);
    if (expected === null) assert.equal(got, null);
    else assert.ok(got !== null && Math.abs(got - expected) < 1e-9, `${q} of ${counts.join()}: ${got}`);
  }
});
