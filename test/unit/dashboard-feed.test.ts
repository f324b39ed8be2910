import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dashboardMetrics, routeCounts } from '../../src/worker/dashboard-feed.js';
import { LATENCY_BUCKETS } from '../../src/worker/middleware/metrics/instruments.js';
import { WorkerMetrics } from '../../src/worker/middleware/metrics/worker-metrics.js';

test("a worker folds the metrics middleware's series into one record per route and method", async () => {
  assert.deepEqual(await routeCounts(), [], 'metrics off: nothing to report');
  const metrics = new WorkerMetrics('0');
  dashboardMetrics(metrics.instruments.registry, LATENCY_BUCKETS);
  const users = metrics.route('/users/:id');
  users.record('GET', 200, 0.003);
  users.record('GET', 200, 0.2);
  users.record('GET', 502, 0.001);
  users.record('POST', 201, 100); // beyond the last bound: only +Inf counts it
  const counts = await routeCounts();
  const get = counts.find((c) => c.method === 'GET');
  assert.deepEqual(get?.statuses, { 200: 2, 502: 1 });
  assert.equal(get.path, '/users/:id');
  assert.equal(get.buckets.length, LATENCY_BUCKETS.length + 1);
  const at = (le: number) => get.buckets[LATENCY_BUCKETS.indexOf(le)];
  assert.deepEqual([at(0.001), at(0.005), at(0.25), get.buckets.at(-1)], [1, 2, 3, 3]);
  const post = counts.find((c) => c.method === 'POST');
  assert.deepEqual(post?.statuses, { 201: 1 });
  assert.deepEqual([post.buckets.at(-2), post.buckets.at(-1)], [0, 1]);
});
