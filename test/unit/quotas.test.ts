import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseConfigText } from '../../src/shared/config/load.js';
import { WindowCounters } from '../../src/shared/ratelimit/window-counters.js';
import { WindowClock, windowOf } from '../../src/worker/middleware/ratelimit/quota-window.js';
import { MiddlewareRegistry } from '../../src/worker/middleware/registry.js';

const iso = (ms: number) => new Date(ms).toISOString();

describe('quota windows: UTC calendar boundaries', () => {
  // [per, now, window start, window end, label]
  const table: [Parameters<typeof windowOf>[0], string, string, string, string][] = [
    [
      'second',
      '2026-12-01T06:45:12.999Z',
      '2026-12-01T06:45:12.000Z',
      '2026-12-01T06:45:13.000Z',
      '2026-12-01T06:45:12',
    ],
    [
      'minute',
      '2026-12-01T06:45:00.000Z',
      '2026-12-01T06:45:00.000Z',
      '2026-12-01T06:46:00.000Z',
      '2026-12-01T06:45',
    ],
    [
      'minute',
      '2026-12-31T23:59:59.999Z',
      '2026-12-31T23:59:00.000Z',
      '2027-01-01T00:00:00.000Z',
      '2026-12-31T23:59',
    ],
    [
      'hour',
      '2026-12-01T06:59:59.999Z',
      '2026-12-01T06:00:00.000Z',
      '2026-12-01T07:00:00.000Z',
      '2026-12-01T06',
    ],
    ['day', '2026-12-01T00:00:00.000Z', '2026-12-01T00:00:00.000Z', '2026-12-02T00:00:00.000Z', '2026-12-01'],
    ['day', '2028-02-29T12:00:00.000Z', '2028-02-29T00:00:00.000Z', '2028-03-01T00:00:00.000Z', '2028-02-29'],
    // Months: 31, 28, 29 (leap year) and 30 days, and the year end.
    ['month', '2026-12-15T10:00:00.000Z', '2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z', '2026-12'],
    ['month', '2027-02-28T23:59:59.999Z', '2027-02-01T00:00:00.000Z', '2027-03-01T00:00:00.000Z', '2027-02'],
    ['month', '2028-02-29T23:59:59.999Z', '2028-02-01T00:00:00.000Z', '2028-03-01T00:00:00.000Z', '2028-02'],
    ['month', '2100-02-28T00:00:00.000Z', '2100-02-01T00:00:00.000Z', '2100-03-01T00:00:00.000Z', '2100-02'],
    ['month', '2026-04-30T23:59:59.999Z', '2026-04-01T00:00:00.000Z', '2026-05-01T00:00:00.000Z', '2026-04'],
    ['month', '2026-05-01T00:00:00.000Z', '2026-05-01T00:00:00.000Z', '2026-06-01T00:00:00.000Z', '2026-05'],
  ];
  for (const [per, now, start, end, label] of table) {
    test(`${per} at ${now}`, () => {
      const window = windowOf(per, Date.parse(now));
      assert.deepEqual([iso(window.startMs), iso(window.endMs), window.label], [start, end, label]);
    });
  }

  test('leap Februaries are 29 days (2028, 2000), others 28 (2027, 2100)', () => {
    const days = (y: number) => {
      const w = windowOf('month', Date.UTC(y, 1, 10));
      return (w.endMs - w.startMs) / 86_400_000;
    };
    assert.deepEqual([2027, 2028, 2000, 2100].map(days), [28, 29, 29, 28]);
  });

  test('a clock reuses its window until the boundary, then moves to the next one', () => {
    const clock = new WindowClock('minute');
    const first = clock.at(Date.parse('2026-12-01T06:45:01Z'));
    assert.equal(clock.at(Date.parse('2026-12-01T06:45:59.999Z')), first);
    assert.equal(clock.at(Date.parse('2026-12-01T06:46:00Z')).label, '2026-12-01T06:46');
    // A clock stepped back (NTP) finds the earlier window again.
    assert.equal(clock.at(Date.parse('2026-12-01T06:45:30Z')).label, '2026-12-01T06:45');
  });
});

describe('window counters (embedded store and insurance)', () => {
  test('the first add sets the expiry; later adds keep it; an expired counter starts again', () => {
    let now = 0;
    const counters = new WindowCounters(10, () => now);
    assert.deepEqual(counters.add('k', 1, 1_000), [1, 1_000]);
    now = 400;
    assert.deepEqual(counters.add('k', 1, 5_000), [2, 600]);
    assert.deepEqual(counters.add('k', -1, 5_000), [1, 600]);
    assert.deepEqual(counters.get('k'), [1, 600]);
    now = 1_000;
    assert.equal(counters.get('k'), undefined);
    assert.deepEqual(counters.add('k', 1, 1_000), [1, 1_000]);
    counters.set('ban', 1, 2_000);
    assert.deepEqual(counters.get('ban'), [1, 2_000]);
    counters.close();
  });

  test('bounded by max keys: the least recently written counter goes first', () => {
    const counters = new WindowCounters(100, () => 0);
    for (let i = 0; i < 1_000; i++) counters.add(`k${i}`, 1, 60_000);
    assert.equal(counters.size, 100);
    assert.equal(counters.get('k0'), undefined);
    assert.deepEqual(counters.get('k999'), [1, 60_000]);
    counters.close();
  });
});

describe('quota and ban config', () => {
  const registry = new MiddlewareRegistry();
  const parse = (yaml: string) => parseConfigText(yaml, 'config.yaml', registry);
  const base = 'routes:\n  - path: /a\n    target: http://127.0.0.1:1\n    middleware: [ratelimit]\n';

  test('defaults: no quotas, no ban; durations of the ban in seconds', () => {
    assert.deepEqual(parse(base).rate_limit.quotas, []);
    assert.equal(parse(base).rate_limit.ban, undefined);
    const config = parse(
      `${base}rate_limit:\n  quotas:\n    - { limit: 10000, per: day }\n    - { limit: 200000, per: month }\n  ban: { after: 20, within: 1m, for: 10m }\n`,
    );
    assert.deepEqual(config.rate_limit.quotas, [
      { limit: 10000, per: 'day' },
      { limit: 200000, per: 'month' },
    ]);
    assert.deepEqual(config.rate_limit.ban, { after: 20, within: 60, for: 600 });
  });

  test('a bad period, a repeated period, a fractional limit and a sub-second ban are reported with their path', () => {
    assert.throws(
      () =>
        parse(
          `${base}rate_limit:\n  quotas:\n    - { limit: 1, per: year }\n    - { limit: 1.5, per: day }\n  ban: { after: 3, within: 500ms, for: 10m }\n`,
        ),
      (err: ConfigError) =>
        err.lines.some((l) => l.includes('rate_limit.quotas[0].per')) &&
        err.lines.some((l) => l.includes('rate_limit.quotas[1].limit')) &&
        err.lines.some((l) => l.includes('rate_limit.ban.within: must be whole seconds')),
    );
    assert.throws(
      () =>
        parse(`${base}rate_limit:\n  quotas:\n    - { limit: 1, per: day }\n    - { limit: 2, per: day }\n`),
      (err: ConfigError) =>
        err.lines.some((l) => l.includes('rate_limit.quotas[1].per: a second quota per day')),
    );
  });

  test('a route overrides the quotas and the ban', () => {
    const config = parse(
      `${base}    rate_limit: { quotas: [{ limit: 5, per: minute }], ban: { after: 2, within: 10s, for: 1h } }\n`,
    );
    assert.deepEqual(config.routes[0]?.rate_limit?.quotas, [{ limit: 5, per: 'minute' }]);
    assert.deepEqual(config.routes[0]?.rate_limit?.ban, { after: 2, within: 10, for: 3600 });
  });
});
