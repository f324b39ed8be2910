import assert from 'node:assert/strict';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { IncomingMessage } from 'node:http';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import type { UpstreamPlan } from '../../src/shared/plan/types.js';
import {
  type EndpointView,
  isUpstreamWorkerToPrimary,
  type UpstreamWorkerToPrimary,
} from '../../src/shared/upstream-messages.js';
import type { PoolEndpoint } from '../../src/worker/upstream/endpoint.js';
import { cookieValue } from '../../src/worker/upstream/hash-key.js';
import { PROVISIONAL_EJECTION_MS, UpstreamPool } from '../../src/worker/upstream/pool.js';
import { EndpointDirectory } from '../../src/worker/upstream/directory.js';
import { flushUpstreamRequests } from '../../src/worker/upstream/request-counts.js';
import { testUpstreamPlan } from '../helpers/plans.js';

/*
 * The pool's choice set (health, local ejection, SRV priority, panic) and its passive
 * detection, driven as the forwarder drives it. Balancing is round_robin so the set shows.
 */

const logger = pino({ level: 'silent' });

function upstreamPlan(
  overrides: Partial<UpstreamPlan> = {},
  outlier: Partial<UpstreamPlan['outlier']> = {},
): UpstreamPlan {
  const plan = testUpstreamPlan(
    { balance: 'round_robin', outlier_detection: { consecutive_failures: 3 } },
    { name: 'users', targets: [], fingerprint: 'f1' },
  );
  return { ...plan, outlier: { ...plan.outlier, ...outlier }, ...overrides };
}

function view(port: number, fields: Partial<EndpointView> = {}): EndpointView {
  return {
    id: `127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    protocol: 'http:',
    weight: 1,
    priority: 0,
    state: 'healthy',
    reason: '',
    since: 0,
    ...fields,
  };
}

const req = {} as IncomingMessage;

function harness(plan: UpstreamPlan) {
  const reports: UpstreamWorkerToPrimary[] = [];
  const pool = new UpstreamPool({ plan, logger, report: (m) => reports.push(m) });
  /** The ports the next `n` picks reach, as a sorted set. */
  const reached = (n = 12) => {
    const ports = new Set<number>();
    for (let i = 0; i < n; i++) {
      const e = pool.pick(req);
      if (e) ports.add(e.port);
    }
    return [...ports].sort();
  };
  /** One exchange with `e` that fails with a reset. */
  const fail = (e: PoolEndpoint) => {
    pool.started(e);
    pool.ended(e, 'reset', false);
  };
  const endpointOn = (port: number) => {
    for (let i = 0; i < 20; i++) {
      const e = pool.pick(req);
      if (e?.port === port) return e;
    }
    throw new Error(`port ${port} is not picked`);
  };
  return { pool, reports, reached, fail, endpointOn };
}

describe('upstream pool: choice set', () => {
  test('only healthy endpoints are used; none listed or none usable (panic off) picks nothing', () => {
    const { pool, reached } = harness(upstreamPlan({ panicThreshold: 0 }));
    assert.deepEqual(reached(), []);
    pool.update([
      view(1),
      view(2, { state: 'unhealthy' }),
      view(3, { state: 'unknown' }),
      view(4, { state: 'ejected' }),
    ]);
    assert.deepEqual(reached(), [1]);
    pool.update([view(2, { state: 'unhealthy' }), view(3, { state: 'unknown' })]);
    assert.deepEqual(reached(), []);
    pool.close();
  });

  test('panic: below panic_threshold usable, every endpoint of the group is used', () => {
    const { pool, reached } = harness(upstreamPlan({ panicThreshold: 0.5 }));
    pool.update([view(1), view(2, { state: 'unhealthy' }), view(3, { state: 'unhealthy' })]);
    assert.deepEqual(reached(), [1, 2, 3]);
    pool.update([view(1), view(2), view(3, { state: 'unhealthy' })]);
    assert.deepEqual(reached(), [1, 2]);
    pool.update([view(1, { state: 'ejected' }), view(2, { state: 'unhealthy' })]);
    assert.deepEqual(reached(), [1, 2]);
    pool.close();
  });

  test('SRV priority: only the lowest priority that has a usable endpoint', () => {
    const { pool, reached } = harness(upstreamPlan({ panicThreshold: 0 }));
    pool.update([view(1, { priority: 10 }), view(2, { priority: 10 }), view(3, { priority: 20 })]);
    assert.deepEqual(reached(), [1, 2]);
    pool.update([
      view(1, { priority: 10, state: 'unhealthy' }),
      view(2, { priority: 10 }),
      view(3, { priority: 20 }),
    ]);
    assert.deepEqual(reached(), [2]);
    pool.update([
      view(1, { priority: 10, state: 'unhealthy' }),
      view(2, { priority: 10, state: 'ejected' }),
      view(3, { priority: 20 }),
    ]);
    assert.deepEqual(reached(), [3]);
    pool.close();
  });

  test('an endpoint that stays in the list keeps its object (in-flight count, agent) across lists', () => {
    const { pool, endpointOn } = harness(upstreamPlan());
    pool.update([view(1), view(2)]);
    const first = endpointOn(1);
    pool.started(first);
    pool.update([view(1, { weight: 3 }), view(2), view(3)]);
    const again = endpointOn(1);
    assert.equal(again, first);
    assert.equal(again.inFlight, 1);
    assert.equal(again.weight, 3);
    assert.deepEqual(pool.inFlight(), { '127.0.0.1:1': 1, '127.0.0.1:2': 0, '127.0.0.1:3': 0 });
    pool.close();
  });

  test('an endpoint that leaves gets no new requests; its agent closes once its last request ends', () => {
    const { pool, endpointOn, reached } = harness(upstreamPlan());
    pool.update([view(1), view(2)]);
    const leaving = endpointOn(2);
    let destroyed = 0;
    const destroy = leaving.agent.destroy.bind(leaving.agent);
    leaving.agent.destroy = () => {
      destroyed++;
      destroy();
    };
    pool.started(leaving);
    pool.update([view(1)]);
    assert.deepEqual(reached(), [1]);
    assert.equal(destroyed, 0, 'destroyed while a request was in flight');
    pool.ended(leaving, undefined, true);
    assert.equal(destroyed, 1);
    pool.close();
  });
});

describe('upstream pool: passive detection', () => {
  test('consecutive_failures in a row eject locally at once and report to the primary; a success in between resets', () => {
    const { pool, reports, reached, fail, endpointOn } = harness(
      upstreamPlan({}, { consecutiveFailures: 3 }),
    );
    pool.update([view(1), view(2), view(3)]);
    const bad = endpointOn(2);
    fail(bad);
    fail(bad);
    pool.started(bad);
    pool.responded(bad, 404); // an answer, even a 4xx, is a success
    pool.ended(bad, undefined, true);
    fail(bad);
    fail(bad);
    assert.deepEqual(reached(), [1, 2, 3]);
    assert.equal(reports.length, 0);
    pool.started(bad);
    pool.responded(bad, 503);
    pool.ended(bad, undefined, true);
    assert.deepEqual(reached(), [1, 3]);
    assert.deepEqual(reports, [
      { type: 'portico:outlier', upstream: 'users', endpoint: '127.0.0.1:2', reason: '5xx' },
    ]);
    pool.close();
  });

  test('max_ejection_percent bounds local ejections (one may always go); the report is sent anyway', () => {
    const { pool, reports, reached, fail, endpointOn } = harness(
      upstreamPlan({ panicThreshold: 0 }, { consecutiveFailures: 1, maxEjectionPercent: 10 }),
    );
    pool.update([view(1), view(2), view(3)]);
    fail(endpointOn(1));
    assert.deepEqual(reached(), [2, 3]);
    fail(endpointOn(2));
    assert.deepEqual(reached(), [2, 3]);
    assert.equal(reports.length, 2);
    pool.close();
  });

  test('one report per episode: none while the primary has it ejected, none again within the provisional time', () => {
    const { pool, reports, fail, endpointOn } = harness(
      upstreamPlan({ panicThreshold: 1 }, { consecutiveFailures: 1, maxEjectionPercent: 100 }),
    );
    pool.update([view(1), view(2)]);
    // Panic (threshold 100 %): an ejected endpoint still gets requests, and they still fail.
    const bad = endpointOn(1);
    for (let i = 0; i < 10; i++) fail(bad);
    assert.equal(reports.length, 1);
    pool.update([view(1, { state: 'ejected' }), view(2)]);
    for (let i = 0; i < 10; i++) fail(bad);
    assert.equal(reports.length, 1);
    pool.close();
  });

  test('consecutive_failures: 0 turns passive detection off', () => {
    const { pool, reports, reached, fail, endpointOn } = harness(
      upstreamPlan({}, { consecutiveFailures: 0 }),
    );
    pool.update([view(1), view(2)]);
    const bad = endpointOn(1);
    for (let i = 0; i < 20; i++) fail(bad);
    assert.deepEqual(reached(), [1, 2]);
    assert.equal(reports.length, 0);
    pool.close();
  });

  test('a local ejection lapses after the provisional time; a new list from the primary replaces it at once', async () => {
    const { pool, reached, fail, endpointOn } = harness(upstreamPlan({}, { consecutiveFailures: 1 }));
    pool.update([view(1), view(2)]);
    fail(endpointOn(1));
    assert.deepEqual(reached(), [2]);
    await new Promise((r) => setTimeout(r, PROVISIONAL_EJECTION_MS + 200));
    assert.deepEqual(reached(), [1, 2]);
    fail(endpointOn(1));
    assert.deepEqual(reached(), [2]);
    // The primary ejects it: its state rules from now on.
    pool.update([view(1, { state: 'ejected' }), view(2)]);
    assert.deepEqual(reached(), [2]);
    // …and it returns when the primary says so, not a moment later.
    pool.update([view(1), view(2)]);
    assert.deepEqual(reached(), [1, 2]);
    pool.close();
  });
});

describe('portico_upstream_requests_total', () => {
  test('counts by status class; two pools of one upstream share the series, which go with the last', async () => {
    const registry = new Registry();
    const requests = new Counter({
      name: 'portico_upstream_requests_total',
      help: 'test',
      labelNames: ['upstream', 'endpoint', 'status_class'] as const,
      registers: [registry],
      collect() {
        flushUpstreamRequests(this);
      },
    });
    const make = () => new UpstreamPool({ plan: upstreamPlan(), logger, requests, report: () => {} });
    const old = make();
    const next = make();
    old.update([view(1)]);
    next.update([view(1)]);
    const exchange = (pool: UpstreamPool, status: number | undefined) => {
      const e = pool.pick(req) as PoolEndpoint;
      pool.started(e);
      if (status !== undefined) pool.responded(e, status);
      pool.ended(e, status === undefined ? 'reset' : undefined, status !== undefined);
    };
    exchange(old, 200);
    exchange(old, 404);
    // Collected in between: only the increments since are added later.
    assert.equal((await requests.get()).values.length, 5);
    old.close();
    exchange(next, 200);
    exchange(next, 503);
    exchange(next, undefined);
    const values = async () =>
      Object.fromEntries(
        (await requests.get()).values.map((v) => [`${String(v.labels.status_class)}`, v.value]),
      );
    assert.deepEqual(await values(), { error: 1, '2xx': 2, '3xx': 0, '4xx': 1, '5xx': 1 });
    next.update([view(2)]);
    assert.deepEqual(Object.keys(await values()).sort(), ['2xx', '3xx', '4xx', '5xx', 'error']);
    assert.ok((await requests.get()).values.every((v) => v.labels.endpoint === '127.0.0.1:2'));
    next.close();
  });
});

describe('endpoint directory', () => {
  test('a list that came before its pool is handed over when the pool attaches; a detach forgets it', () => {
    const directory = new EndpointDirectory().install();
    try {
      process.emit(
        'message',
        { type: 'portico:endpoints', upstream: 'users', fingerprint: 'f1', endpoints: [view(7)] },
        undefined,
      );
      const { pool, reached } = harness(upstreamPlan());
      const detach = directory.attach(pool, 'f1');
      assert.deepEqual(reached(), [7]);
      process.emit(
        'message',
        { type: 'portico:endpoints', upstream: 'users', fingerprint: 'f1', endpoints: [view(8)] },
        undefined,
      );
      assert.deepEqual(reached(), [8]);
      // Another fingerprint of the same name is another pool's.
      process.emit(
        'message',
        { type: 'portico:endpoints', upstream: 'users', fingerprint: 'f2', endpoints: [view(9)] },
        undefined,
      );
      assert.deepEqual(reached(), [8]);
      assert.deepEqual(directory.load(), { users: { '127.0.0.1:8': 0 } });
      detach();
      assert.equal(directory.list('users', 'f1'), undefined);
      pool.close();
    } finally {
      directory.uninstall();
    }
  });
});

describe('hash key from a cookie', () => {
  for (const [header, name, expected] of [
    ['a=1; session=abc; b=2', 'session', 'abc'],
    ['session=abc', 'session', 'abc'],
    ['xsession=1; session="q"', 'session', 'q'],
    ['a=1;session=  z  ', 'session', 'z'],
    ['a=1; b=2', 'session', undefined],
    ['session=', 'session', undefined],
  ] as const) {
    test(`${JSON.stringify(header)} → ${String(expected)}`, () =>
      assert.equal(cookieValue(header, name), expected));
  }
});

describe('endpoint directory over a real IPC channel', () => {
  test('answers portico:upstream-load-collect with the in-flight counts, breakers and retries of its pools', async () => {
    const child = fork(fileURLToPath(new URL('../fixtures/upstream-pool-host.js', import.meta.url)), {
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    const next = (type: string) =>
      new Promise<Record<string, unknown>>((resolve) => {
        const on = (m: Record<string, unknown>) => {
          if (m.type !== type) return;
          child.off('message', on);
          resolve(m);
        };
        child.on('message', on);
      });
    try {
      await next('test:ready');
      child.send({
        type: 'portico:endpoints',
        upstream: 'users',
        fingerprint: 'f1',
        endpoints: [view(1), view(2)],
      });
      for (const expected of ['127.0.0.1:1', '127.0.0.1:2', '127.0.0.1:1']) {
        const started = next('test:started');
        child.send({ type: 'test:start' });
        assert.equal((await started).endpoint, expected);
      }
      const load = next('portico:upstream-load');
      child.send({ type: 'portico:upstream-load-collect', id: 41 });
      assert.deepEqual(await load, {
        type: 'portico:upstream-load',
        id: 41,
        inFlight: { users: { '127.0.0.1:1': 2, '127.0.0.1:2': 1 } },
        breakers: { users: { state: 0, retryAfter: 0, trips: 0, active: 3 } },
        retries: { users: { retries: 0, budgetRefusals: 0, retrying: 0 } },
      });
      const failed = next('test:failed');
      child.send({ type: 'test:fail' });
      await failed;
      const open = next('portico:upstream-load');
      child.send({ type: 'portico:upstream-load-collect', id: 42 });
      const answer = await open;
      assert.ok(isUpstreamWorkerToPrimary(answer));
      assert.deepEqual(answer.type === 'portico:upstream-load' && answer.breakers, {
        users: { state: 2, retryAfter: 10, trips: 1, active: 3 },
      });
    } finally {
      child.kill();
    }
  });
});
