import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { pino } from 'pino';
import { Counter, Gauge, Registry } from 'prom-client';
import type { BreakerPlan } from '../../src/shared/plan/types.js';
import {
  type BreakerInstruments,
  CircuitBreaker,
  CLOSED,
  collectBreakerStates,
  HALF_OPEN,
  OPEN,
} from '../../src/worker/upstream/breaker.js';

/*
 * The breaker's state machine driven as the pool drives it (admit → started → verdict →
 * ended), on a mocked clock: the window's roll-off, min_requests, the ratio, open_for's
 * doubling and cap, half-open probe slots, the limits.
 */

const logger = pino({ level: 'silent' });

function plan(overrides: Partial<BreakerPlan> = {}): BreakerPlan {
  return {
    maxRequests: 0,
    maxPending: 0,
    errorRatio: 0.5,
    minRequests: 4,
    windowMs: 1_000,
    openForMs: 200_000,
    halfOpenRequests: 1,
    ...overrides,
  };
}

/** One whole exchange: let through, then judged. */
function exchange(breaker: CircuitBreaker, failed: boolean): boolean {
  if (breaker.admit() !== undefined) return false;
  breaker.started();
  breaker.judged(failed);
  breaker.ended();
  return true;
}

beforeEach(() => {
  mock.timers.enable({ apis: ['Date', 'setTimeout'], now: 1_000_000 });
});
afterEach(() => {
  mock.timers.reset();
});

describe('error-ratio breaker', () => {
  test('opens only once min_requests were seen and the ratio is reached', () => {
    const breaker = new CircuitBreaker('u', plan({ minRequests: 10 }), logger);
    for (let i = 0; i < 9; i++) exchange(breaker, true);
    assert.equal(breaker.state, CLOSED, '9 failures are under min_requests');
    exchange(breaker, true);
    assert.equal(breaker.state, OPEN);
    assert.equal(breaker.admit()?.code, 'PORTICO_ERR_CIRCUIT_OPEN');
  });

  test('stays closed below the ratio', () => {
    const breaker = new CircuitBreaker('u', plan({ minRequests: 10 }), logger);
    for (let i = 0; i < 30; i++) exchange(breaker, i % 3 === 0);
    assert.equal(breaker.state, CLOSED);
  });

  test('failures older than the window roll off', () => {
    const breaker = new CircuitBreaker('u', plan(), logger);
    for (let i = 0; i < 3; i++) exchange(breaker, true);
    mock.timers.tick(1_100);
    exchange(breaker, true);
    assert.equal(breaker.state, CLOSED, 'only one exchange is left in the window');
    for (let i = 0; i < 2; i++) exchange(breaker, false);
    exchange(breaker, true);
    assert.equal(breaker.state, OPEN, '2 of 4 in the window failed');
  });

  test('open_for doubles on each trip in a row, up to 5m, and starts over once closed', () => {
    const breaker = new CircuitBreaker('u', plan({ minRequests: 1, errorRatio: 1 }), logger);
    exchange(breaker, true);
    assert.equal(breaker.retryAfter(), 200);
    const reopen = (openedFor: number) => {
      mock.timers.tick(openedFor);
      assert.equal(breaker.state, HALF_OPEN);
      assert.ok(exchange(breaker, true), 'the probe goes through');
      assert.equal(breaker.state, OPEN);
    };
    reopen(200_000);
    assert.equal(breaker.retryAfter(), 300, 'doubled, capped at 5m');
    reopen(300_000);
    assert.equal(breaker.retryAfter(), 300);
    mock.timers.tick(300_000);
    assert.ok(exchange(breaker, false));
    assert.equal(breaker.state, CLOSED);
    exchange(breaker, true);
    assert.equal(breaker.retryAfter(), 200, 'a new episode starts from open_for');
    assert.equal(breaker.trips, 4);
  });

  test('half-open: at most half_open_requests probes at once; one that ends without a verdict frees its place', () => {
    const breaker = new CircuitBreaker(
      'u',
      plan({ minRequests: 1, errorRatio: 1, halfOpenRequests: 2, openForMs: 1_000 }),
      logger,
    );
    exchange(breaker, true);
    mock.timers.tick(1_000);
    assert.equal(breaker.state, HALF_OPEN);
    assert.equal(breaker.admit(), undefined);
    breaker.started();
    assert.equal(breaker.admit(), undefined);
    breaker.started();
    assert.equal(breaker.admit()?.code, 'PORTICO_ERR_CIRCUIT_OPEN');
    // The client of one probe went away: no verdict, and its place is free again.
    breaker.ended();
    assert.equal(breaker.admit(), undefined);
    breaker.started();
    breaker.judged(false);
    breaker.ended();
    assert.equal(breaker.state, HALF_OPEN, 'one of two probes passed');
    breaker.judged(false);
    breaker.ended();
    assert.equal(breaker.state, CLOSED);
  });

  test('verdicts that come in while open change nothing', () => {
    const breaker = new CircuitBreaker(
      'u',
      plan({ minRequests: 1, errorRatio: 1, openForMs: 1_000 }),
      logger,
    );
    breaker.started();
    exchange(breaker, true);
    assert.equal(breaker.state, OPEN);
    breaker.judged(false);
    breaker.ended();
    assert.equal(breaker.state, OPEN);
    assert.equal(breaker.trips, 1);
  });

  test('error_ratio 0 never opens', () => {
    const breaker = new CircuitBreaker('u', plan({ errorRatio: 0, minRequests: 1 }), logger);
    for (let i = 0; i < 50; i++) assert.ok(exchange(breaker, true));
    assert.equal(breaker.state, CLOSED);
  });
});

describe('limits', () => {
  test('max_requests refuses while that many are in flight', () => {
    const breaker = new CircuitBreaker('u', plan({ errorRatio: 0, maxRequests: 2 }), logger);
    breaker.started();
    breaker.started();
    assert.equal(breaker.admit()?.code, 'PORTICO_ERR_UPSTREAM_OVERFLOW');
    breaker.ended();
    assert.equal(breaker.admit(), undefined);
  });

  test('max_pending refuses while that many wait for a connection', () => {
    const breaker = new CircuitBreaker('u', plan({ errorRatio: 0, maxPending: 1 }), logger);
    assert.ok(breaker.countsPending);
    breaker.pending = 1;
    assert.equal(breaker.admit()?.code, 'PORTICO_ERR_UPSTREAM_OVERFLOW');
    breaker.pending = 0;
    assert.equal(breaker.admit(), undefined);
  });
});

describe('metrics', () => {
  test('state gauge: the worst live breaker of a name; overflow and trips counted per upstream', async () => {
    const registry = new Registry();
    const instruments: BreakerInstruments = {
      overflow: new Counter({
        name: 'o',
        help: 'o',
        labelNames: ['upstream', 'limit'] as const,
        registers: [registry],
      }),
      trips: new Counter({ name: 't', help: 't', labelNames: ['upstream'] as const, registers: [registry] }),
      state: new Gauge({
        name: 's',
        help: 's',
        labelNames: ['upstream'] as const,
        registers: [registry],
        collect() {
          collectBreakerStates(this);
        },
      }),
    };
    const settings = plan({ minRequests: 1, errorRatio: 1, maxRequests: 1 });
    const old = new CircuitBreaker('u', settings, logger, instruments);
    const current = new CircuitBreaker('u', settings, logger, instruments);
    exchange(old, true);
    current.started();
    assert.ok(current.admit());
    const values = async (name: string) =>
      (await registry.getSingleMetric(name)?.get())?.values.map((v) => [v.labels, v.value]);
    assert.deepEqual(await values('s'), [[{ upstream: 'u' }, OPEN]]);
    assert.deepEqual(await values('t'), [[{ upstream: 'u' }, 1]]);
    assert.deepEqual(await values('o'), [[{ upstream: 'u', limit: 'max_requests' }, 1]]);
    old.close();
    assert.deepEqual(await values('s'), [[{ upstream: 'u' }, CLOSED]]);
    current.close();
    assert.deepEqual(await values('s'), []);
  });
});
