import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { freePort, sleep } from './helpers/net.js';
import { type Answer, get, statusCounts } from './helpers/ratelimit.js';
import { integerReply, type RunningRedis, startRedis } from './helpers/redis.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Redis faults under a running gateway (one worker, so the per-worker insurance limiter's
 * allowance is exactly one bucket). Bucket: burst 5, one token per 10 s.
 */
const BURST = 5;
const UNAVAILABLE = 'rate-limit store unavailable: limiting per worker until it returns';
const RECOVERED = 'rate-limit store available again: shared limiting resumed';

let upstream: Upstream;
before(async () => {
  upstream = await startUpstream();
});
after(async () => {
  await upstream?.close();
});

const config = (url: string | undefined, extra: Record<string, unknown> = {}) => ({
  server: { workers: 1, trusted_proxies: ['127.0.0.1'] },
  routes: [{ path: '/limited', target: upstream.url, middleware: ['ratelimit'] }],
  rate_limit: { requests_per_second: 0.1, burst: BURST, store_timeout: '250ms', ...extra },
  ...(url ? { redis: { url } } : {}),
});

const asClient = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });
const burst = (gw: RunningGateway, ip: string, n: number) =>
  Promise.all(Array.from({ length: n }, () => get(`${gw.url}/limited`, asClient(ip))));
const no5xx = (answers: readonly Answer[]) =>
  assert.ok(
    answers.every((r) => r.status === 200 || r.status === 429),
    JSON.stringify(statusCounts(answers)),
  );

describe('Redis killed, restarted and paused under traffic', () => {
  let redis: RunningRedis;
  let gw: RunningGateway;
  before(async () => {
    redis = await startRedis();
    gw = await startGateway(config(redis.url));
  });
  after(async () => {
    await gw?.stop();
    await redis?.stop();
  });

  test('killed mid-load: no 5xx, one log line, and the insurance limiter still limits', async () => {
    const answers: Answer[] = [];
    let stop = false;
    const loops = Array.from({ length: 4 }, async (_, i) => {
      for (let n = 0; n < 200 && !stop; n++)
        answers.push(await get(`${gw.url}/limited`, asClient(`10.9.0.${i}`)));
    });
    await sleep(300);
    redis.kill('SIGKILL');
    const atKill = answers.length;
    await sleep(700);
    stop = true;
    await Promise.all(loops);
    no5xx(answers);
    assert.ok(
      atKill >= 4 && answers.length - atKill >= 20,
      `${atKill} answers before the kill, ${answers.length - atKill} after`,
    );
    // Each of the 4 clients: at most one bucket in Redis and one in the insurance limiter.
    assert.ok((statusCounts(answers)[200] ?? 0) <= 4 * 2 * BURST, JSON.stringify(statusCounts(answers)));

    const fresh = await burst(gw, '10.9.1.1', 20);
    no5xx(fresh);
    assert.equal(statusCounts(fresh)[200], BURST, 'a fresh client gets exactly one bucket from the worker');
    assert.equal(gw.records().filter((r) => r.msg === UNAVAILABLE).length, 1, 'logged once, not per request');
    assert.equal(gw.records().filter((r) => r.msg === 'worker died; respawning').length, 0);
  });

  test('restarted: shared limiting resumes and buckets are in Redis again', async () => {
    await redis.restart();
    const deadline = Date.now() + 10_000;
    for (let i = 0; !gw.records().some((r) => r.msg === RECOVERED); i++) {
      assert.ok(Date.now() < deadline, 'recovered within 10 s');
      no5xx([await get(`${gw.url}/limited`, asClient(`10.9.2.${i % 250}`))]);
      await sleep(100);
    }
    const answers = await burst(gw, '10.9.3.1', 20);
    assert.equal(statusCounts(answers)[200], BURST);
    const keys = await redis.command('KEYS', '*10.9.3.1}');
    assert.match(keys, /^\*1\r\n/, 'the bucket lives in Redis');
    const pttl = integerReply(await redis.command('PTTL', keys.split('\r\n')[2] as string));
    assert.ok(pttl > 0 && pttl <= 50_000, `expires when full again (PTTL ${pttl})`);
  });

  test('paused (SIGSTOP): every request completes within the store timeout bound, none 5xx', async () => {
    redis.kill('SIGSTOP');
    try {
      const answers = [...(await burst(gw, '10.9.4.1', 10))];
      for (let i = 0; i < 10; i++) answers.push(await get(`${gw.url}/limited`, asClient('10.9.4.2')));
      no5xx(answers);
      const slowest = Math.max(...answers.map((r) => r.ms));
      assert.ok(slowest < 2_000, `slowest request took ${slowest.toFixed(0)} ms (store_timeout 250 ms)`);
      assert.equal(statusCounts(answers)[200], 2 * BURST, 'limited locally meanwhile');
    } finally {
      redis.kill('SIGCONT');
    }
  });
});

describe('Redis down at start-up', () => {
  test('REDIS_URL (env) unreachable: the gateway starts, limits per worker, never 5xx', async () => {
    const dead = `redis://127.0.0.1:${await freePort()}`;
    const gw = await startGateway(config(undefined), { env: { REDIS_URL: dead } });
    try {
      const answers = await burst(gw, '10.8.0.1', 12);
      no5xx(answers);
      assert.equal(statusCounts(answers)[200], BURST);
      const store = await gw.waitFor((r) => r.msg === 'rate-limit store: redis');
      assert.equal(store.connected, false);
      assert.equal(gw.records().filter((r) => r.msg === UNAVAILABLE).length, 1);
    } finally {
      await gw.stop();
    }
  });

  test('on_store_error: deny answers 503 with Retry-After; redis.url wins over REDIS_URL', async () => {
    const live = await startRedis();
    const dead = `redis://127.0.0.1:${await freePort()}`;
    const gw = await startGateway(config(dead, { on_store_error: 'deny' }), { env: { REDIS_URL: live.url } });
    try {
      const reply = await get(`${gw.url}/limited`, asClient('10.8.1.1'));
      assert.equal(reply.status, 503);
      assert.deepEqual(JSON.parse(reply.body), { error: 'rate limiter unavailable' });
      assert.equal(reply.headers['retry-after'], '1');
      assert.equal(integerReply(await live.command('DBSIZE')), 0, 'the env URL was not used');
    } finally {
      await gw.stop();
      await live.stop();
    }
  });
});

describe('Redis misconfigured: wrong password, missing password, bad database, TLS', () => {
  const PASSWORD = 's3cret-pw';
  let redis: RunningRedis;
  before(async () => {
    redis = await startRedis({ password: PASSWORD });
  });
  after(async () => {
    await redis?.stop();
  });

  /** The gateway with metrics on the gateway port. */
  const start = async (url: string, extra: Record<string, unknown> = {}, workers = 1) =>
    startGateway({
      ...config(url, extra),
      server: { workers, trusted_proxies: ['127.0.0.1'] },
      metrics: { prometheus: {} },
    });
  const storeUp = async (gw: RunningGateway) =>
    sum(parseMetrics((await get(`${gw.url}/metrics`)).body), 'gateway_ratelimit_store_up', {
      store: 'redis',
    });
  const errorLines = (gw: RunningGateway, start: string) =>
    gw.records().filter((r) => r.level === 50 && String(r.msg).startsWith(start));
  /** ioredis retries every 0.1-2 s; let it fail a few more times before counting lines. */
  const afterRetries = () => sleep(1_500);

  test('wrong password: one worded error line, masked; gauge 0; allow limits per worker', async () => {
    const url = `redis://:wrong-pw@127.0.0.1:${redis.port}`;
    const gw = await start(url);
    try {
      const line = await gw.waitFor((r) => String(r.msg).startsWith('redis authentication failed'));
      assert.equal(line.level, 50, 'error level');
      assert.match(
        String(line.msg),
        new RegExp(
          `^redis authentication failed for redis://\\*\\*\\*@127\\.0\\.0\\.1:${redis.port}/?: WRONGPASS`,
        ),
      );
      assert.ok(!gw.lines.join('\n').includes('wrong-pw'), 'the password is never logged');
      assert.equal(await storeUp(gw), 0);
      const answers = await burst(gw, '10.7.0.1', 12);
      no5xx(answers);
      assert.equal(statusCounts(answers)[200], BURST, 'on_store_error allow: the insurance limiter limits');
      await afterRetries();
      assert.equal(errorLines(gw, 'redis authentication failed').length, 1, 'logged once');
      assert.equal(integerReply(await redis.command('DBSIZE')), 0);
    } finally {
      await gw.stop();
    }
  });

  test('missing password with on_store_error deny: NOAUTH in words, gauge 0, 503', async () => {
    const gw = await start(`redis://127.0.0.1:${redis.port}`, { on_store_error: 'deny' });
    try {
      const line = await gw.waitFor((r) => String(r.msg).startsWith('redis authentication failed'));
      assert.match(
        String(line.msg),
        /^redis authentication failed for redis:\/\/127\.0\.0\.1:\d+\/?: NOAUTH/,
      );
      assert.equal(await storeUp(gw), 0);
      const reply = await get(`${gw.url}/limited`, asClient('10.7.1.1'));
      assert.equal(reply.status, 503);
      assert.deepEqual(JSON.parse(reply.body), { error: 'rate limiter unavailable' });
      await afterRetries();
      assert.equal(errorLines(gw, 'redis authentication failed').length, 1, 'logged once');
    } finally {
      await gw.stop();
    }
  });

  test('database index out of range: said in words, gauge 0, nothing shared in database 0', async () => {
    const url = `redis://:${PASSWORD}@127.0.0.1:${redis.port}/16`;
    const gw = await start(url);
    try {
      const line = await gw.waitFor((r) => String(r.msg).startsWith('redis database selection failed'));
      assert.equal(line.level, 50);
      assert.match(
        String(line.msg),
        /^redis database selection failed for redis:\/\/\*\*\*@127\.0\.0\.1:\d+\/16: ERR DB index is out of range/,
      );
      assert.equal(await storeUp(gw), 0);
      const answers = await burst(gw, '10.7.2.1', 12);
      no5xx(answers);
      assert.equal(statusCounts(answers)[200], BURST);
      assert.equal(integerReply(await redis.command('DBSIZE')), 0, 'no bucket landed in database 0');
      await afterRetries();
      assert.equal(errorLines(gw, 'redis database selection failed').length, 1, 'logged once');
    } finally {
      await gw.stop();
    }
  });

  test('rediss:// to a plain Redis: the TLS failure is said in words', async () => {
    const gw = await start(`rediss://:${PASSWORD}@127.0.0.1:${redis.port}`);
    try {
      const line = await gw.waitFor((r) => String(r.msg).startsWith('redis TLS connection failed'), 15_000);
      assert.equal(line.level, 50);
      assert.match(
        String(line.msg),
        /^redis TLS connection failed for rediss:\/\/\*\*\*@127\.0\.0\.1:\d+\/?: /,
      );
      no5xx(await burst(gw, '10.7.3.1', 6));
    } finally {
      await gw.stop();
    }
  });

  test('right password: shared across workers as before, gauge 1, no error line', async () => {
    const gw = await start(redis.url, {}, 2);
    try {
      const answers = await burst(gw, '10.7.4.1', 20);
      no5xx(answers);
      assert.equal(statusCounts(answers)[200], BURST, 'one bucket for both workers');
      assert.match(await redis.command('KEYS', '*10.7.4.1}'), /^\*1\r\n/, 'the bucket lives in Redis');
      assert.equal(await storeUp(gw), 1);
      assert.equal(gw.records().filter((r) => r.level === 50).length, 0);
    } finally {
      await gw.stop();
    }
  });
});
