import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino } from 'pino';
import { installWorkerMetrics, observationHooks } from '../../src/worker/middleware/metrics/recorder.js';
import { WorkerResources } from '../../src/worker/resources.js';
import { parseMetrics, sum } from '../helpers/metrics.js';

const logger = pino({ level: 'silent' });

test('with metrics off the observation hooks are no-ops', async () => {
  const { hooks, metrics } = await observationHooks(new WorkerResources(logger), false, '0');
  assert.equal(metrics, undefined);
  assert.equal(hooks.route('/x'), undefined);
  assert.doesNotThrow(() => {
    hooks.rateLimitCounter('limited', 'burst')();
    hooks.authFailure('expired');
    hooks.rateLimitStoreUp('redis', false);
  });
});

test('the worker keeps one metrics registry, however many handler trees ask for it', async () => {
  const resources = new WorkerResources(logger);
  const first = await observationHooks(resources, true, '0');
  const second = await observationHooks(resources, true, '0');
  assert.ok(first.metrics);
  assert.equal(second.metrics, first.metrics);
  assert.equal(first.hooks, first.metrics);
});

test('rate-limit decisions, auth failures and store state land in the worker registry', async () => {
  const resources = new WorkerResources(logger);
  const metrics = await installWorkerMetrics(resources, '0');
  const { hooks } = await observationHooks(resources, true, '0');
  assert.equal(hooks, metrics);
  const allowed = hooks.rateLimitCounter('allowed', 'all');
  for (let i = 0; i < 3; i++) allowed();
  // Resolved by two routes: one series.
  hooks.rateLimitCounter('limited', 'burst')();
  hooks.rateLimitCounter('limited', 'burst')();
  hooks.rateLimitCounter('limited', 'day')();
  hooks.rateLimitCounter('store_error', 'all')();
  hooks.authFailure('missing_token');
  hooks.authFailure('missing_token');
  // A caller inventing reasons cannot grow series without bound.
  for (let i = 0; i < 100; i++) hooks.authFailure(`reason_${i}`);
  hooks.rateLimitStoreUp('redis', true);
  hooks.rateLimitStoreUp('redis', false);
  const samples = parseMetrics(await metrics.instruments.registry.metrics());
  assert.equal(sum(samples, 'gateway_ratelimit_decisions_total', { decision: 'allowed' }), 3);
  assert.equal(sum(samples, 'gateway_ratelimit_decisions_total', { decision: 'limited' }), 3);
  assert.equal(sum(samples, 'gateway_ratelimit_decisions_total', { decision: 'limited', policy: 'day' }), 1);
  assert.equal(
    sum(samples, 'gateway_ratelimit_decisions_total', { decision: 'limited', policy: 'burst' }),
    2,
  );
  const burstSeries = samples.filter(
    (s) => s.name === 'gateway_ratelimit_decisions_total' && s.labels.policy === 'burst',
  );
  assert.equal(burstSeries.length, 1);
  assert.equal(sum(samples, 'gateway_ratelimit_decisions_total', { decision: 'store_error' }), 1);
  assert.equal(sum(samples, 'gateway_auth_failures_total', { reason: 'missing_token' }), 2);
  assert.equal(sum(samples, 'gateway_auth_failures_total'), 102);
  assert.ok(samples.filter((s) => s.name === 'gateway_auth_failures_total').length <= 33);
  assert.equal(sum(samples, 'gateway_ratelimit_store_up', { store: 'redis' }), 0);
});
