import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { buildPlan } from '../../src/primary/plan/build.js';
import type { CheckResult } from '../../src/primary/upstreams/health-check.js';
import { type Clock, UpstreamRegistry } from '../../src/primary/upstreams/registry.js';
import { loadConfigText } from '../../src/shared/config/load.js';
import type { Plan } from '../../src/shared/plan/types.js';
import type { EndpointView, UpstreamPrimaryToWorker } from '../../src/shared/upstream-messages.js';
import { MiddlewareRegistry } from '../../src/worker/middleware/registry.js';

/*
 * The primary's decisions about endpoints, driven directly with worker messages, scripted
 * check results and a fake clock: ejection length, max_ejection_percent, first report wins,
 * the return after the ejection (and its check), thresholds, and state kept across reloads.
 */

function plan(yaml: string): Plan {
  const file = '/tmp/portico-unit/config.yaml';
  return buildPlan(loadConfigText(yaml, file, new MiddlewareRegistry(), {}), file, '/tmp/portico-unit', {});
}

const targets = (n: number) =>
  Array.from({ length: n }, (_, i) => `      - url: http://127.0.0.${i + 1}:9000`).join('\n');

function poolConfig(n: number, extra = '', route = '/u/*'): string {
  return `upstreams:
  users:
    targets:
${targets(n)}
    outlier_detection: { base_ejection_time: 30s, max_ejection_time: 100s, max_ejection_percent: 50 }
${extra}
routes:
  - path: ${route}
    upstream: users
`;
}

/** Timers that fire only when the test moves time on. */
class FakeClock implements Clock {
  time = 1_000_000;
  #timers: { at: number; fn: () => void; id: number }[] = [];
  #next = 0;
  now = () => this.time;
  random = () => 0;
  setTimeout = (fn: () => void, ms: number) => {
    const id = this.#next++;
    this.#timers.push({ at: this.time + ms, fn, id });
    return id;
  };
  clearTimeout = (handle: unknown) => {
    this.#timers = this.#timers.filter((t) => t.id !== handle);
  };
  /** Moves time on by `ms`, firing due timers in order (and awaiting what they start). */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      this.#timers.sort((a, b) => a.at - b.at);
      const due = this.#timers[0];
      if (due === undefined || due.at > end) break;
      this.#timers.shift();
      this.time = due.at;
      due.fn();
      await settle();
    }
    this.time = end;
    await settle();
  }
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

interface Harness {
  registry: UpstreamRegistry;
  clock: FakeClock;
  sent: UpstreamPrimaryToWorker[];
  /** What each endpoint's check answers next (default: pass). */
  answers: Map<string, CheckResult>;
  probes: string[];
  state(id: string): EndpointView;
  report(id: string, reason?: '5xx' | 'connect_failure'): void;
}

async function harness(p: Plan): Promise<Harness> {
  const clock = new FakeClock();
  const sent: UpstreamPrimaryToWorker[] = [];
  const answers = new Map<string, CheckResult>();
  const probes: string[] = [];
  const registry = new UpstreamRegistry(
    pino({ level: 'silent' }),
    (m) => {
      sent.push(m);
      return 0;
    },
    {
      clock,
      probe: (endpoint) => {
        probes.push(endpoint.id);
        return Promise.resolve(answers.get(endpoint.id) ?? { pass: true, detail: 'status 200' });
      },
    },
  );
  await registry.prepare(p);
  registry.settle(p);
  const state = (id: string) => {
    const found = registry
      .inForce()
      .flatMap((pool) => pool.endpoints)
      .find((e) => e.id === id);
    assert.ok(found, `no endpoint ${id}`);
    return { ...found };
  };
  const report = (id: string, reason: '5xx' | 'connect_failure' = '5xx') =>
    registry.handle({ type: 'portico:outlier', upstream: 'users', endpoint: id, reason });
  return { registry, clock, sent, answers, probes, state, report };
}

const A = '127.0.0.1:9000';
const B = '127.0.0.2:9000';
const C = '127.0.0.3:9000';
const D = '127.0.0.4:9000';

describe('upstream registry: ejections from outlier reports', () => {
  test('the first report ejects; the rest of the episode is ignored; the change reaches the workers within a second', async () => {
    const h = await harness(plan(poolConfig(3)));
    assert.equal(h.state(A).state, 'healthy');
    h.report(A);
    h.report(A, 'connect_failure');
    h.report(A);
    const ejected = h.state(A);
    assert.equal(ejected.state, 'ejected');
    assert.equal(ejected.reason, 'ejected for 30 s after 5 5xx answers in a row');
    assert.equal(ejected.since, h.clock.time);
    assert.deepEqual(h.registry.ejections('users', A), new Map([['5xx', 1]]));
    assert.equal(h.sent.length, 0, 'coalesced, not sent at once');
    await h.clock.advance(1_000);
    assert.equal(h.sent.length, 1, 'one broadcast for the burst');
    const message = h.sent[0] as Extract<UpstreamPrimaryToWorker, { type: 'portico:endpoints' }>;
    assert.equal(message.upstream, 'users');
    assert.equal(message.endpoints.find((e) => e.id === A)?.state, 'ejected');
    assert.equal(message.endpoints.find((e) => e.id === B)?.state, 'healthy');
    h.registry.close();
  });

  test('each ejection lasts base × the number so far, capped at max; it always ends by itself', async () => {
    const h = await harness(plan(poolConfig(3)));
    for (const expected of [30_000, 60_000, 90_000, 100_000, 100_000]) {
      h.report(A);
      assert.match(h.state(A).reason, new RegExp(`ejected for ${expected / 1000} s`));
      await h.clock.advance(expected - 1);
      assert.equal(h.state(A).state, 'ejected', `still ejected just before ${expected} ms`);
      await h.clock.advance(1);
      assert.equal(h.state(A).state, 'healthy', `back after ${expected} ms`);
      assert.equal(h.state(A).reason, '');
    }
    assert.deepEqual(h.registry.ejections('users', A), new Map([['5xx', 5]]));
    h.registry.close();
  });

  test('max_ejection_percent: never more than the share, but at least one may go', async () => {
    const four = await harness(plan(poolConfig(4)));
    four.report(A);
    four.report(B);
    four.report(C);
    assert.deepEqual(
      [A, B, C, D].map((id) => four.state(id).state),
      ['ejected', 'ejected', 'healthy', 'healthy'],
    );
    four.registry.close();
    const one = await harness(
      plan(poolConfig(1).replace('max_ejection_percent: 50', 'max_ejection_percent: 10')),
    );
    one.report(A);
    assert.equal(one.state(A).state, 'ejected', 'a pool of one may lose its endpoint');
    one.registry.close();
  });

  test('consecutive_failures: 0 turns ejection off', async () => {
    const off = await harness(
      plan(poolConfig(2).replace('{ base_ejection_time', '{ consecutive_failures: 0, base_ejection_time')),
    );
    off.report(A);
    assert.equal(off.state(A).state, 'healthy');
    off.registry.close();
  });

  test('with active checks, an ejection ends only once a check passes', async () => {
    const p = plan(
      poolConfig(
        2,
        '    health_check: { interval: 10s, timeout: 1s, healthy_threshold: 2, unhealthy_threshold: 3 }',
      ),
    );
    const h = await harness(p);
    assert.equal(h.state(A).state, 'healthy', 'the first check decides');
    h.report(A);
    await h.clock.advance(29_999);
    h.answers.set(A, { pass: false, detail: 'status 500' });
    const probes = h.probes.length;
    await h.clock.advance(1);
    assert.ok(h.probes.length > probes, 'checked as soon as the ejection time ended');
    assert.equal(h.state(A).state, 'ejected', 'a failed check keeps it out');
    assert.equal(h.state(A).reason, 'ejection over, waiting for a passing check');
    h.answers.delete(A);
    await h.clock.advance(11_000);
    assert.equal(h.state(A).state, 'healthy', 'the next passing check brings it back');
    h.registry.close();
  });
});

describe('upstream registry: active checks', () => {
  const CHECK =
    '    health_check: { interval: 10s, timeout: 1s, healthy_threshold: 2, unhealthy_threshold: 3 }';

  test('the first check decides; then thresholds in a row flip it, with the reason in words', async () => {
    const p = plan(poolConfig(2, CHECK));
    const clock = new FakeClock();
    const answers = new Map<string, CheckResult>([[B, { pass: false, detail: 'connection refused' }]]);
    const registry = new UpstreamRegistry(pino({ level: 'silent' }), () => 0, {
      clock,
      probe: (e) => Promise.resolve(answers.get(e.id) ?? { pass: true, detail: 'status 200' }),
    });
    await registry.prepare(p);
    registry.settle(p);
    const state = (id: string) => registry.inForce()[0]?.endpoints.find((e) => e.id === id);
    assert.equal(state(A)?.state, 'healthy');
    assert.equal(state(B)?.state, 'unhealthy');
    assert.equal(state(B)?.reason, '1 failed check: connection refused');
    registry.handle({ type: 'portico:outlier', upstream: 'users', endpoint: B, reason: '5xx' });
    assert.equal(state(B)?.state, 'unhealthy', 'not in use: nothing to eject');

    answers.set(A, { pass: false, detail: 'status 500' });
    answers.delete(B);
    await clock.advance(10_000);
    assert.equal(state(A)?.state, 'healthy', '1 failure of 3');
    assert.equal(state(B)?.state, 'unhealthy', '1 pass of 2');
    await clock.advance(10_000);
    assert.equal(state(A)?.state, 'healthy', '2 failures of 3');
    assert.equal(state(B)?.state, 'healthy', '2 passes of 2');
    await clock.advance(10_000);
    assert.equal(state(A)?.state, 'unhealthy');
    assert.equal(state(A)?.reason, '3 failed checks: status 500');
    registry.close();
  });

  test('endpoints are unknown until the first check has answered; prepare waits for it', async () => {
    const p = plan(poolConfig(1, CHECK));
    let answer!: (r: CheckResult) => void;
    const registry = new UpstreamRegistry(pino({ level: 'silent' }), () => 0, {
      clock: new FakeClock(),
      probe: () => new Promise((resolve) => (answer = resolve)),
    });
    let prepared = false;
    const preparing = registry.prepare(p).then(() => (prepared = true));
    await settle();
    assert.equal(prepared, false);
    const [message] = registry.snapshot(p) as [
      Extract<UpstreamPrimaryToWorker, { type: 'portico:endpoints' }>,
    ];
    assert.equal(message.endpoints[0]?.state, 'unknown');
    answer({ pass: true, detail: 'status 200' });
    await preparing;
    const [after] = registry.snapshot(p) as [Extract<UpstreamPrimaryToWorker, { type: 'portico:endpoints' }>];
    assert.equal(after.endpoints[0]?.state, 'healthy');
    registry.close();
  });
});

describe('upstream registry: reloads', () => {
  test('an unchanged upstream keeps its ejections, counts and timers; a changed one starts fresh', async () => {
    const first = plan(poolConfig(3));
    const h = await harness(first);
    h.report(A);
    const since = h.state(A).since;
    await h.clock.advance(10_000);

    // Only an unrelated route changed: same pool.
    const unrelated = plan(`${poolConfig(3)}  - path: /other\n    target: http://127.0.0.9:9000\n`);
    assert.notEqual(unrelated.hash, first.hash);
    await h.registry.prepare(unrelated);
    h.registry.settle(unrelated);
    assert.equal(h.state(A).state, 'ejected');
    assert.equal(h.state(A).since, since);
    await h.clock.advance(20_000);
    assert.equal(h.state(A).state, 'healthy', 'the ejection timer kept running across the reload');
    h.report(A);
    assert.match(h.state(A).reason, /ejected for 60 s/, 'the ejection count survived too');

    // The upstream itself changed: a fresh pool, nothing carried over but the counter.
    const changed = plan(poolConfig(3).replace('max_ejection_percent: 50', 'max_ejection_percent: 60'));
    await h.registry.prepare(changed);
    h.registry.settle(changed);
    assert.equal(h.state(A).state, 'healthy');
    h.report(A);
    assert.match(h.state(A).reason, /ejected for 30 s/);
    assert.deepEqual(h.registry.ejections('users', A), new Map([['5xx', 3]]));

    // Gone from the config: its counter series go too.
    const gone = plan('routes:\n  - path: /x\n    target: http://127.0.0.9:9000\n');
    await h.registry.prepare(gone);
    h.registry.settle(gone);
    assert.equal(h.registry.ejections('users', A), undefined);
    assert.deepEqual(
      h.registry.inForce().map((pool) => pool.plan.name),
      ['http://127.0.0.9:9000'],
    );
    h.registry.close();
  });
});
