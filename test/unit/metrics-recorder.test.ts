import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { installWorkerMetrics, metricsRecorder } from '../../src/worker/middleware/metrics/recorder.js';
import { WorkerResources } from '../../src/worker/resources.js';
import { parseMetrics, sum } from '../helpers/metrics.js';

const logger = pino({ level: 'silent' });

test('metricsRecorder is a no-op until metrics are installed in the worker', () => {
  const recorder = metricsRecorder(new WorkerResources(logger));
  assert.doesNotThrow(() => {
    recorder.rateLimitDecision('limited');
    recorder.authFailure('expired');
    recorder.rateLimitStoreUp('redis', false);
  });
});

test('rate-limit decisions, auth failures and store state land in the worker registry', async () => {
  const resources = new WorkerResources(logger);
  const metrics = await installWorkerMetrics(resources, '0');
  const recorder = metricsRecorder(resources);
  assert.equal(recorder, metrics);
  for (let i = 0; i < 3; i++) recorder.rateLimitDecision('allowed');
  recorder.rateLimitDecision('limited');
  recorder.rateLimitDecision('store_error');
  recorder.authFailure('missing_token');
  recorder.authFailure('missing_token');
  // A caller inventing reasons cannot grow series without bound.
  for (let i = 0; i < 100; i++) recorder.authFailure(`reason_${i}`);
  recorder.rateLimitStoreUp('redis', true);
  recorder.rateLimitStoreUp('redis', false);
  const samples = parseMetrics(await metrics.instruments.registry.metrics());
  assert.equal(sum(samples, 'gateway_ratelimit_decisions_total', { decision: 'allowed' }), 3);
  assert.equal(sum(samples, 'gateway_ratelimit_decisions_total', { decision: 'limited' }), 1);
  assert.equal(sum(samples, 'gateway_ratelimit_decisions_total', { decision: 'store_error' }), 1);
  assert.equal(sum(samples, 'gateway_auth_failures_total', { reason: 'missing_token' }), 2);
  assert.equal(sum(samples, 'gateway_auth_failures_total'), 102);
  assert.ok(samples.filter((s) => s.name === 'gateway_auth_failures_total').length <= 33);
  assert.equal(sum(samples, 'gateway_ratelimit_store_up', { store: 'redis' }), 0);
});
