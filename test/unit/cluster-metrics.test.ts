import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { ClusterMetrics } from '../../src/primary/metrics/cluster-metrics.js';
import type { MetricSnapshot } from '../../src/shared/messages.js';
import { parseMetrics, sum } from '../helpers/metrics.js';

function workerSnapshot(worker: string, requests: number, inFlight: number): MetricSnapshot[] {
  return [
    {
      name: 'gateway_requests_total',
      help: 'requests',
      type: 'counter',
      aggregator: 'sum',
      values: [{ value: requests, labels: { method: 'GET', path: '/a', status: '200' } }],
    },
    {
      name: 'gateway_requests_in_flight',
      help: 'in flight',
      type: 'gauge',
      aggregator: 'sum',
      values: [{ value: inFlight, labels: {} }],
    },
    {
      name: 'process_start_time_seconds',
      help: 'start',
      type: 'gauge',
      aggregator: 'omit',
      values: [{ value: 1000, labels: { worker } }],
    },
  ];
}

test('a worker that is gone keeps its counters in the cluster sum; its gauges leave with it', async () => {
  // In this (non-cluster) process no worker is ready, so collect() merges what it holds.
  const metrics = new ClusterMetrics(new Registry(), pino({ level: 'silent' }));
  metrics.snapshot(1, 0, workerSnapshot('0', 5, 2));
  metrics.snapshot(2, 0, workerSnapshot('1', 7, 1));
  let samples = parseMetrics(await metrics.collect());
  assert.equal(sum(samples, 'gateway_requests_total'), 12);
  assert.equal(sum(samples, 'gateway_requests_in_flight'), 3);
  assert.equal(samples.filter((s) => s.name === 'process_start_time_seconds').length, 2, 'per worker, kept');

  metrics.exited(1);
  samples = parseMetrics(await metrics.collect());
  assert.equal(sum(samples, 'gateway_requests_total'), 12, 'never goes back');
  assert.equal(sum(samples, 'gateway_requests_in_flight'), 1);

  // The respawned worker starts from zero; the retired count stays underneath.
  metrics.snapshot(3, 0, workerSnapshot('0', 4, 0));
  metrics.exited(2);
  samples = parseMetrics(await metrics.collect());
  assert.equal(sum(samples, 'gateway_requests_total'), 16);
  assert.equal(sum(samples, 'gateway_requests_in_flight'), 0);
});
