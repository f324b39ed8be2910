import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ConfigError, parseConfigText } from '../../src/shared/config/load.js';
import { redisUrlOf } from '../../src/shared/config/settings.js';
import { BlockedKeys } from '../../src/worker/middleware/ratelimit/blocked-keys.js';
import { compilePolicy, gcraTake, nextTokenInUs, remainingOf } from '../../src/shared/ratelimit/gcra.js';
import { ceilSeconds, planHeaders } from '../../src/worker/middleware/ratelimit/headers.js';
import { ipv6Network } from '../../src/worker/middleware/ratelimit/ipv6-prefix.js';
import { parseKeySpec } from '../../src/worker/middleware/ratelimit/key.js';
import { MemoryBuckets } from '../../src/shared/ratelimit/memory-buckets.js';
import { MiddlewareRegistry } from '../../src/worker/middleware/registry.js';

describe('token bucket (GCRA) arithmetic', () => {
  test("the article's bucket: rps 5, burst 4 lets 4 through at once, then one per 200 ms", () => {
    const policy = compilePolicy(5, 4);
    assert.deepEqual(policy, { intervalUs: 200_000, burst: 4 });
    let tat: number | undefined;
    const at = (nowUs: number) => {
      const step = gcraTake(tat, nowUs, policy);
      tat = step.tat;
      return step;
    };
    // [time µs, admitted, remaining after, µs until the next token]
    const table: [number, boolean, number, number][] = [
      [0, true, 3, 200_000],
      [0, true, 2, 200_000],
      [0, true, 1, 200_000],
      [0, true, 0, 200_000],
      [0, false, 0, 200_000],
      [199_999, false, 0, 1],
      [200_000, true, 0, 200_000],
      [300_000, false, 0, 100_000],
      [400_000, true, 0, 200_000],
      [1_400_000, true, 3, 200_000], // idle 1 s: full again (capped at burst), minus this one
    ];
    for (const [now, allowed, remaining, next] of table) {
      const step = at(now);
      const decision = { allowed: step.allowed, fullInUs: step.fullInUs };
      assert.equal(step.allowed, allowed, `admitted at ${now}`);
      assert.equal(remainingOf(decision, policy), remaining, `remaining at ${now}`);
      assert.equal(nextTokenInUs(decision, policy), next, `next token at ${now}`);
    }
  });

  test('a refused request changes nothing', () => {
    const policy = compilePolicy(1, 1);
    const first = gcraTake(undefined, 0, policy);
    const refused = gcraTake(first.tat, 10, policy);
    assert.equal(refused.allowed, false);
    assert.equal(refused.tat, first.tat);
  });

  test('remaining is 0 exactly when the next request at that instant is refused', () => {
    for (const [rps, burst] of [
      [3, 7],
      [0.1, 1],
      [1000, 50],
      [7, 2],
    ] as const) {
      const policy = compilePolicy(rps, burst);
      let tat: number | undefined;
      for (let now = 0, i = 0; i < 200; i++, now += Math.floor(policy.intervalUs / 3)) {
        const step = gcraTake(tat, now, policy);
        tat = step.tat;
        const remaining = remainingOf(step, policy);
        const probe = gcraTake(tat, now, policy);
        assert.equal(remaining === 0, !probe.allowed, `rps ${rps} burst ${burst} step ${i}`);
        assert.ok(remaining >= 0 && remaining < burst);
        if (!step.allowed) assert.ok(nextTokenInUs(step, policy) > 0);
      }
    }
  });

  test('slow rates keep their exact interval; the window rounds up to whole seconds', () => {
    const policy = compilePolicy(0.1, 3);
    assert.equal(policy.intervalUs, 10_000_000);
    assert.equal(planHeaders('default', policy, false).policyField, '"default";q=3;w=30');
    assert.equal(planHeaders('default', compilePolicy(5, 4), false).policyField, '"default";q=4;w=1');
    assert.equal(ceilSeconds(1), 1);
    assert.equal(ceilSeconds(2_000_000), 2);
  });
});

describe('IPv6 clients are keyed by network', () => {
  test('table', () => {
    const table: [string, number, string][] = [
      ['2001:db8:1:2:a:b:c:d', 64, '2001:db8:1:2::/64'],
      ['2001:DB8:1:2::1', 64, '2001:db8:1:2::/64'],
      ['2001:db8::1', 64, '2001:db8:0:0::/64'],
      ['2001:db8:1:2ff::1', 56, '2001:db8:1:200::/56'],
      ['::1', 64, '0:0:0:0::/64'],
      ['::ffff:1.2.3.4', 112, '0:0:0:0:0:ffff:102::/112'],
      ['fe80::1%eth0', 64, 'fe80:0:0:0::/64'],
      ['2001:db8::1', 128, '2001:db8::1'],
      ['10.0.0.1', 64, '10.0.0.1'],
      ['not:an:address', 64, 'not:an:address'],
    ];
    for (const [address, bits, network] of table) assert.equal(ipv6Network(address, bits), network, address);
  });
});

describe('key specs', () => {
  test('parses the documented kinds', () => {
    assert.deepEqual(parseKeySpec('ip'), { kind: 'ip' });
    assert.deepEqual(parseKeySpec('sub'), { kind: 'sub' });
    assert.deepEqual(parseKeySpec('route+ip'), { kind: 'route+ip' });
    assert.deepEqual(parseKeySpec('header:X-Api-Key'), { kind: 'header', name: 'x-api-key' });
    assert.throws(() => parseKeySpec('cookie'));
  });
});

describe('bounded in-process maps', () => {
  test('MemoryBuckets never holds more than maxKeys and sweeps refilled buckets', () => {
    let now = 0;
    const buckets = new MemoryBuckets({ maxKeys: 100, now: () => now });
    const policy = compilePolicy(10, 2);
    for (let i = 0; i < 10_000; i++) buckets.take(`k${i}`, policy);
    assert.equal(buckets.size, 100);
    now += policy.intervalUs; // every bucket took one token one interval ago: full again
    buckets.sweep();
    assert.equal(buckets.size, 0);
    buckets.close();
  });

  test('the least recently used bucket is the one evicted', () => {
    const buckets = new MemoryBuckets({ maxKeys: 2, now: () => 0 });
    const policy = compilePolicy(1, 1);
    buckets.take('a', policy);
    buckets.take('b', policy);
    buckets.take('c', policy); // evicts a
    assert.equal(buckets.take('b', policy).allowed, false);
    assert.equal(buckets.take('c', policy).allowed, false);
    assert.equal(buckets.take('a', policy).allowed, true, 'a was forgotten: a full bucket again');
    buckets.close();
  });

  test('BlockedKeys expires entries and stays under its cap', () => {
    let now = 0;
    const blocked = new BlockedKeys(10, () => now);
    for (let i = 0; i < 1_000; i++) blocked.block(`k${i}`, 500);
    assert.equal(blocked.size, 10);
    assert.equal(blocked.blockedForUs('k999'), 500);
    now = 500;
    assert.equal(blocked.blockedForUs('k999'), 0);
    assert.equal(blocked.blockedForUs('unknown'), 0);
  });
});

describe('rate-limit config', () => {
  const registry = new MiddlewareRegistry();
  const parse = (yaml: string) => parseConfigText(yaml, 'config.yaml', registry);
  const base = 'routes:\n  - path: /a\n    target: http://127.0.0.1:1\n';

  test("the article's keys stay valid and the new ones default", () => {
    const config = parse(
      `${base}    middleware: [ratelimit]\nrate_limit:\n  enabled: true\n  requests_per_second: 5\n  burst: 4\n`,
    );
    assert.equal(config.rate_limit.key, 'ip');
    assert.equal(config.rate_limit.on_store_error, 'allow');
    assert.equal(config.rate_limit.store_timeout, 250);
    assert.equal(config.rate_limit.legacy_headers, false);
  });

  test('bad keys, bad store options and a useless route block are reported with their path', () => {
    assert.throws(
      () =>
        parse(`${base}    middleware: [ratelimit]\nrate_limit:\n  key: cookie\n  on_store_error: retry\n`),
      (err: ConfigError) =>
        err.lines.some((l) => l.includes('rate_limit.key: must be ip, sub, route+ip or header:<Name>')) &&
        err.lines.some((l) => l.includes('rate_limit.on_store_error')),
    );
    assert.throws(
      () => parse(`${base}    rate_limit: { burst: 3 }\n`),
      (err: ConfigError) =>
        err.lines.some((l) => l.includes('routes[0].rate_limit: has no effect: the route does not list')),
    );
  });

  test('redis.url wins over REDIS_URL; an empty REDIS_URL is unset; a malformed one is an error', () => {
    const withUrl = parse(`${base}redis:\n  url: redis://file:6379\n`);
    const without = parse(base);
    assert.equal(redisUrlOf(withUrl, { REDIS_URL: 'redis://env:6379' }), 'redis://file:6379');
    assert.equal(redisUrlOf(without, { REDIS_URL: 'redis://env:6379' }), 'redis://env:6379');
    assert.equal(redisUrlOf(without, { REDIS_URL: '' }), undefined);
    assert.throws(() => redisUrlOf(without, { REDIS_URL: 'localhost:6379' }), /REDIS_URL must be/);
  });
});
