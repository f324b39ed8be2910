import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { sleep } from './helpers/net.js';
import { type Answer, get, statusCounts } from './helpers/ratelimit.js';
import { integerReply, type RunningRedis, startRedis } from './helpers/redis.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Issue 16: quotas (`rate_limit.quotas`) and the ban (`rate_limit.ban`) through the real CLI,
 * real workers and a real redis-server. Windows are UTC calendar windows, computed here from
 * the wall clock; a test that needs one window to itself first waits out a window about to end.
 */

let upstream: Upstream;
before(async () => {
  upstream = await startUpstream();
});
after(async () => {
  await upstream?.close();
});

const asClient = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
const MINUTE = 60_000;
const nextMinuteMs = () => (Math.floor(Date.now() / MINUTE) + 1) * MINUTE;
/** Waits for the next minute when fewer than `needMs` of this one remain. */
async function roomInMinute(needMs = 15_000): Promise<void> {
  const left = nextMinuteMs() - Date.now();
  if (left < needMs) await sleep(left + 50);
}
const hourLabel = () => new Date().toISOString().slice(0, 13);
const bodyOf = (answer: Answer) => JSON.parse(answer.body) as { error: string };

const config = (extra: Record<string, unknown>, redisUrl?: string, workers = 1) => ({
  server: { workers, trusted_proxies: ['127.0.0.1'] },
  routes: [
    { path: '/q', target: upstream.url, middleware: ['ratelimit'] },
    {
      path: '/dm',
      target: upstream.url,
      middleware: ['ratelimit'],
      rate_limit: {
        quotas: [
          { limit: 1000, per: 'day' },
          { limit: 5000, per: 'month' },
        ],
      },
    },
  ],
  rate_limit: { requests_per_second: 100, burst: 100, ...extra },
  metrics: { prometheus: {} },
  ...(redisUrl === undefined ? {} : { redis: { url: redisUrl } }),
});

describe('quotas on Redis, shared by two instances', () => {
  let redis: RunningRedis;
  let a: RunningGateway;
  let b: RunningGateway;
  before(async () => {
    redis = await startRedis();
    const cfg = config({ quotas: [{ limit: 5, per: 'minute' }] }, redis.url, 2);
    [a, b] = await Promise.all([startGateway(cfg), startGateway(cfg)]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('{limit: 5, per: minute} admits 5 across instances, then 429 naming the quota until the next minute', async () => {
    await roomInMinute();
    const seen: Answer[] = [];
    for (let i = 0; i < 7; i++)
      seen.push(await get(`${i % 2 === 0 ? a.url : b.url}/q`, asClient('10.0.0.1')));
    assert.deepEqual(
      seen.map((r) => r.status),
      [200, 200, 200, 200, 200, 429, 429],
    );
    const refused = seen[5] as Answer;
    assert.deepEqual(bodyOf(refused), { error: 'quota exceeded: minute' });
    const expected = Math.ceil((nextMinuteMs() - Date.now()) / 1000);
    const retryAfter = Number(refused.headers['retry-after']);
    assert.ok(
      Math.abs(retryAfter - expected) <= 2,
      `Retry-After ${retryAfter}: the next minute boundary is ${expected} s away`,
    );
    // Every response names every policy: the bucket and the quota.
    for (const r of seen) {
      assert.equal(r.headers['ratelimit-policy'], '"burst";q=100;w=1, "minute";q=5;w=60');
    }
    const items = (r: Answer) => String(r.headers.ratelimit).split(', ');
    assert.deepEqual(
      seen.slice(0, 5).map((r) => items(r)[1]?.replace(/;t=\d+$/, '')),
      ['"minute";r=4', '"minute";r=3', '"minute";r=2', '"minute";r=1', '"minute";r=0'],
    );
    assert.match(items(seen[0] as Answer)[0] as string, /^"burst";r=99;t=\d+$/);
    assert.match(String(refused.headers.ratelimit), /^"minute";r=0;t=\d+$/);
    // The metric names the refusing policy.
    const metrics = parseMetrics((await get(`${a.url}/metrics`)).body);
    const limited = sum(metrics, 'gateway_ratelimit_decisions_total', {
      decision: 'limited',
      policy: 'minute',
    });
    assert.ok(limited >= 1, `limited{policy=minute} on instance a: ${limited}`);
  });

  test("a route's own quotas: day and month windows end at the next UTC midnight and 1st", async () => {
    const r = await get(`${b.url}/dm`, asClient('10.0.0.3'));
    assert.equal(r.status, 200);
    const now = new Date();
    const [y, m, d] = [now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate()];
    const monthSeconds = (Date.UTC(y, m + 1, 1) - Date.UTC(y, m, 1)) / 1000;
    assert.equal(
      r.headers['ratelimit-policy'],
      `"burst";q=100;w=1, "day";q=1000;w=86400, "month";q=5000;w=${monthSeconds}`,
    );
    const items = String(r.headers.ratelimit).split(', ');
    const t = (item: string | undefined) => Number(/;t=(\d+)$/.exec(item ?? '')?.[1]);
    const toMidnight = (Date.UTC(y, m, d + 1) - Date.now()) / 1000;
    const toFirst = (Date.UTC(y, m + 1, 1) - Date.now()) / 1000;
    assert.match(items[1] as string, /^"day";r=999;t=\d+$/);
    assert.match(items[2] as string, /^"month";r=4999;t=\d+$/);
    assert.ok(Math.abs(t(items[1]) - toMidnight) <= 2, `day t=${t(items[1])}, midnight in ${toMidnight} s`);
    assert.ok(Math.abs(t(items[2]) - toFirst) <= 2, `month t=${t(items[2])}, the 1st in ${toFirst} s`);
    // The route's own counters, in its own keys: the day's window is in the key.
    const keys = await redis.command(
      'KEYS',
      `portico:rl:quota:r:/dm|ip:10.0.0.3|day:${now.toISOString().slice(0, 10)}`,
    );
    assert.match(keys, /^\*1\r\n/, keys);
  });

  test('a concurrent burst over 2 instances x 2 workers admits exactly the quota', async () => {
    await roomInMinute();
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => get(`${i % 2 === 0 ? a.url : b.url}/q`, asClient('10.0.0.2'))),
    );
    assert.deepEqual(statusCounts(answers), { 200: 5, 429: 25 });
  });
});

describe('burst and quota together: a refused request consumes nothing', () => {
  let redis: RunningRedis;
  let gw: RunningGateway;
  before(async () => {
    redis = await startRedis();
    gw = await startGateway(
      config({ requests_per_second: 0.1, burst: 3, quotas: [{ limit: 6, per: 'hour' }] }, redis.url),
    );
  });
  after(async () => {
    await gw?.stop();
    await redis?.stop();
  });

  test('refused by the bucket: the quota count is unchanged', async () => {
    const seen: Answer[] = [];
    for (let i = 0; i < 6; i++) seen.push(await get(`${gw.url}/q`, asClient('10.1.0.1')));
    assert.deepEqual(
      seen.map((r) => r.status),
      [200, 200, 200, 429, 429, 429],
    );
    assert.deepEqual(bodyOf(seen[3] as Answer), { error: 'rate limit exceeded: burst' });
    await sleep(200); // refunds are not awaited by the answer
    const key = `portico:rl:quota:g|ip:10.1.0.1|hour:${hourLabel()}`;
    assert.equal(await redis.command('GET', key), '$1\r\n3\r\n', 'three admitted, three refused');
    // The 429's quota item already shows the refund.
    assert.match(String(seen[3]?.headers.ratelimit), /"hour";r=3;/);
  });

  test('refused by the quota: the bucket keeps its tokens', async () => {
    // Bucket 3 tokens, quota 6: spend 3 of the quota on another route-less key first.
    const ip = '10.1.0.2';
    const key = `portico:rl:quota:g|ip:${ip}|hour:${hourLabel()}`;
    await redis.command('SET', key, '5', 'EX', '3600');
    const first = await get(`${gw.url}/q`, asClient(ip));
    assert.equal(first.status, 200, 'the 6th of the hour');
    const refused: Answer[] = [];
    for (let i = 0; i < 3; i++) refused.push(await get(`${gw.url}/q`, asClient(ip)));
    assert.deepEqual(
      refused.map((r) => [r.status, bodyOf(r).error]),
      Array.from({ length: 3 }, () => [429, 'quota exceeded: hour']),
    );
    // One token taken (10 s to refill it); three quota refusals took none.
    const pttl = integerReply(await redis.command('PTTL', `portico:rl:{g|ip:${ip}}`));
    assert.ok(pttl > 0 && pttl <= 10_000, `bucket full again in ${pttl} ms: one token taken`);
    await sleep(200);
    assert.equal(await redis.command('GET', key), '$1\r\n6\r\n');
  });
});

describe('ban', () => {
  let redis: RunningRedis;
  let a: RunningGateway;
  let b: RunningGateway;
  before(async () => {
    redis = await startRedis();
    const cfg = config(
      { requests_per_second: 0.01, burst: 1, ban: { after: 3, within: '1m', for: '10m' } },
      redis.url,
    );
    [a, b] = await Promise.all([startGateway(cfg), startGateway(cfg)]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('a key refused 3 times is banned on every instance, answered locally once known', async () => {
    const ip = '10.2.0.1';
    const seen: Answer[] = [];
    for (let i = 0; i < 4; i++) {
      seen.push(await get(`${a.url}/q`, asClient(ip)));
      await sleep(100); // the refusal is counted after the answer
    }
    assert.deepEqual(
      seen.map((r) => [r.status, bodyOf(r).error ?? 'ok']),
      [
        [200, 'ok'],
        [429, 'rate limit exceeded: burst'],
        [429, 'rate limit exceeded: burst'],
        [429, 'rate limit exceeded: burst'],
      ],
    );
    const onA = await get(`${a.url}/q`, asClient(ip));
    assert.deepEqual([onA.status, bodyOf(onA).error], [429, 'banned: too many refused requests']);
    const retryAfter = Number(onA.headers['retry-after']);
    assert.ok(retryAfter > 590 && retryAfter <= 600, `Retry-After ${retryAfter}: the ban lasts 10 min`);
    // Instance b never refused this key: it learns the ban from Redis.
    const onB = await get(`${b.url}/q`, asClient(ip));
    assert.deepEqual([onB.status, bodyOf(onB).error], [429, 'banned: too many refused requests']);
    // Another key is not banned.
    assert.equal((await get(`${b.url}/q`, asClient('10.2.0.2'))).status, 200);
    // With Redis stopped, both instances still answer the ban, at once, from memory.
    redis.kill('SIGSTOP');
    try {
      for (const gw of [a, b]) {
        const r = await get(`${gw.url}/q`, { ...asClient(ip), timeoutMs: 5_000 });
        assert.deepEqual([r.status, bodyOf(r).error], [429, 'banned: too many refused requests']);
      }
    } finally {
      redis.kill('SIGCONT');
    }
    const metrics = parseMetrics((await get(`${a.url}/metrics`)).body);
    assert.ok(sum(metrics, 'gateway_ratelimit_decisions_total', { decision: 'limited', policy: 'ban' }) >= 2);
  });
});

describe('quotas on the embedded store (no Redis)', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway(config({ quotas: [{ limit: 5, per: 'minute' }] }, undefined, 2));
  });
  after(async () => {
    await gw?.stop();
  });

  test('two workers share one quota', async () => {
    await roomInMinute();
    const answers = await Promise.all(
      Array.from({ length: 20 }, () => get(`${gw.url}/q`, asClient('10.3.0.1'))),
    );
    assert.deepEqual(statusCounts(answers), { 200: 5, 429: 15 });
    const refused = answers.find((r) => r.status === 429) as Answer;
    assert.deepEqual(bodyOf(refused), { error: 'quota exceeded: minute' });
  });
});

describe('quotas when Redis fails: on_store_error applies', () => {
  let redis: RunningRedis;
  let allow: RunningGateway;
  let deny: RunningGateway;
  before(async () => {
    redis = await startRedis();
    const quotas = [{ limit: 3, per: 'minute' }];
    [allow, deny] = await Promise.all([
      startGateway(config({ quotas }, redis.url)),
      startGateway(config({ quotas, on_store_error: 'deny' }, redis.url)),
    ]);
  });
  after(async () => {
    await Promise.all([allow?.stop(), deny?.stop()]);
    await redis?.stop();
  });

  test('allow: the worker counts the quota in memory; deny: 503', async () => {
    await roomInMinute();
    assert.equal((await get(`${allow.url}/q`, asClient('10.4.0.1'))).status, 200, 'Redis up');
    redis.kill('SIGKILL');
    const seen: Answer[] = [];
    for (let i = 0; i < 5; i++) seen.push(await get(`${allow.url}/q`, asClient('10.4.0.2')));
    assert.deepEqual(
      seen.map((r) => r.status),
      [200, 200, 200, 429, 429],
    );
    assert.deepEqual(bodyOf(seen[3] as Answer), { error: 'quota exceeded: minute' });
    const denied = await get(`${deny.url}/q`, asClient('10.4.0.3'));
    assert.deepEqual([denied.status, bodyOf(denied).error], [503, 'rate limiter unavailable']);
  });
});
