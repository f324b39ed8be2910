import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { RetryPlan } from '../../src/shared/plan/types.js';
import { retryAfterMs, RetryPolicy } from '../../src/worker/upstream/retry-policy.js';

const plan: RetryPlan = {
  attempts: 2,
  on: ['connect_failure', 'reset_before_response', 503],
  methods: ['GET', 'PUT'],
  backoff: { baseMs: 25, maxMs: 250 },
  budget: 0.2,
  bufferBytes: 65_536,
};

describe('RetryPolicy', () => {
  const policy = new RetryPolicy(plan, () => 0.999);
  const cases: [Parameters<RetryPolicy['allows']>[0], string, boolean][] = [
    ['connect_failure', 'POST', true],
    ['connect_failure', 'GET', true],
    ['reset_before_response', 'GET', true],
    ['reset_before_response', 'POST', false],
    ['timeout', 'GET', false],
    [503, 'PUT', true],
    [503, 'POST', false],
    [502, 'GET', false],
  ];
  for (const [reason, method, expected] of cases) {
    test(`${String(reason)} for ${method}: ${expected ? 'retried' : 'not retried'}`, () => {
      assert.equal(policy.allows(reason, method), expected);
    });
  }

  test('backoff: full jitter under base × 2^(retry−1), capped at max; Retry-After up to max', () => {
    assert.equal(policy.backoffMs(1, undefined), 24);
    assert.equal(policy.backoffMs(2, undefined), 49);
    assert.equal(policy.backoffMs(10, undefined), 249);
    assert.equal(new RetryPolicy(plan, () => 0).backoffMs(3, undefined), 0);
    assert.equal(policy.backoffMs(1, 100), 100);
    assert.equal(policy.backoffMs(1, 5_000), 250);
  });

  test('Retry-After: seconds or an HTTP date', () => {
    assert.equal(retryAfterMs('3'), 3_000);
    assert.equal(retryAfterMs(new Date(10_000).toUTCString(), 4_000), 6_000);
    assert.equal(retryAfterMs('soon'), undefined);
    assert.equal(retryAfterMs(undefined), undefined);
  });
});
