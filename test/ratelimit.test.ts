import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { get, sfParams, statusCounts } from './helpers/ratelimit.js';
import { integerReply, type RunningRedis, startRedis } from './helpers/redis.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Black-box: the real CLI, real workers, a real redis-server. The global bucket refills at
 * 0.1 token/s (one per 10 s), so during a burst that lasts `elapsed` seconds at most
 * floor(elapsed / 10) extra requests can be admitted; every accuracy assertion allows
 * exactly that and nothing more (in practice 0: the bursts take well under a second).
 */
const ENTRY = fileURLToPath(new URL('./fixtures/ratelimit-entry.js', import.meta.url));
const RPS = 0.1;
const BURST = 20;

function routes(upstream: Upstream) {
  return [
    { path: '/ip', target: upstream.url, middleware: ['test-claims', 'ratelimit'] },
    { path: '/other', target: upstream.url, middleware: ['test-claims', 'ratelimit'] },
    {
      path: '/apikey',
      target: upstream.url,
      middleware: ['ratelimit'],
      rate_limit: { key: 'header:X-Api-Key', burst: 3 },
    },
    {
      path: '/sub',
      target: upstream.url,
      middleware: ['test-claims', 'ratelimit'],
      rate_limit: { key: 'sub', burst: 2 },
    },
    { path: '/own', target: upstream.url, middleware: ['ratelimit'], rate_limit: { burst: 5 } },
    { path: '/free', target: upstream.url, middleware: ['ratelimit'], rate_limit: { enabled: false } },
  ];
}

/** `n` concurrent requests spread round-robin over `urls`; returns answers and seconds taken. */
async function burst(urls: string[], n: number, headers: Record<string, string>) {
  const start = performance.now();
  const answers = await Promise.all(
    Array.from({ length: n }, (_, i) => get(urls[i % urls.length] as string, { headers })),
  );
  return { answers, elapsed: (performance.now() - start) / 1000 };
}

let upstream: Upstream;
before(async () => {
  upstream = await startUpstream();
});
after(async () => {
  await upstream?.close();
});

describe('ratelimit with Redis: two instances x two workers share one budget', () => {
  let redis: RunningRedis;
  let a: RunningGateway;
  let b: RunningGateway;
  before(async () => {
    redis = await startRedis();
    const config = {
      server: { workers: 2, trusted_proxies: ['127.0.0.1'] },
      routes: routes(upstream),
      rate_limit: { requests_per_second: RPS, burst: BURST, legacy_headers: true },
      redis: { url: redis.url },
    };
    [a, b] = await Promise.all([
      startGateway(config, { entry: ENTRY }),
      startGateway(config, { entry: ENTRY }),
    ]);
  });
  after(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('a concurrent burst for one key admits exactly the allowance across instances and workers', async () => {
    const { answers, elapsed } = await burst([`${a.url}/ip`, `${b.url}/ip`], 100, {
      'x-forwarded-for': '10.1.1.1',
    });
    const counts = statusCounts(answers);
    const tolerance = Math.floor(elapsed * RPS);
    assert.ok(
      (counts[200] ?? 0) >= BURST && (counts[200] ?? 0) <= BURST + tolerance,
      `admitted ${counts[200]} of 100 in ${elapsed.toFixed(2)} s; allowance ${BURST}+${tolerance}`,
    );
    assert.equal((counts[200] ?? 0) + (counts[429] ?? 0), 100, JSON.stringify(counts));
    const pids = new Set(answers.map((r) => r.headers['x-worker-pid']));
    assert.equal(pids.size, 4, 'all four workers answered');
    assert.ok(integerReply(await redis.command('DBSIZE')) >= 1);
  });

  test('the global scope is one budget across routes; a route with its own block has its own', async () => {
    const headers = { 'x-forwarded-for': '10.2.2.2' };
    const first = await burst([`${a.url}/ip`], BURST, headers);
    assert.equal(statusCounts(first.answers)[200], BURST);
    assert.equal((await get(`${b.url}/other`, { headers })).status, 429, 'same global bucket');
    assert.equal((await get(`${b.url}/own`, { headers })).status, 200, 'own bucket');
    assert.equal((await get(`${b.url}/free`, { headers })).status, 200, 'enabled: false');
  });

  test('remaining, reset and Retry-After match the bucket on allowed and refused responses', async () => {
    const headers = { 'x-api-key': 'header-test' };
    const seen = [];
    // Alternate instances: the counts continue from one to the other.
    for (const url of [a.url, b.url, a.url, b.url]) seen.push(await get(`${url}/apikey`, { headers }));
    assert.deepEqual(
      seen.map((r) => r.status),
      [200, 200, 200, 429],
    );
    for (const r of seen) assert.equal(r.headers['ratelimit-policy'], '"burst";q=3;w=30');
    const limits = seen.map((r) => sfParams(r.headers.ratelimit));
    assert.deepEqual(
      limits.map((l) => [l.name, l.r]),
      [
        ['"burst"', '2'],
        ['"burst"', '1'],
        ['"burst"', '0'],
        ['"burst"', '0'],
      ],
    );
    for (const l of limits) {
      const t = Number(l.t);
      assert.ok(t >= 1 && t <= 10, `t=${l.t}: the next token is at most one interval (10 s) away`);
    }
    const refused = seen[3]!;
    assert.equal(refused.headers['retry-after'], limits[3]!.t, 'Retry-After equals t');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    assert.deepEqual(JSON.parse(refused.body), { error: 'rate limit exceeded: burst' });
    assert.match(String(refused.headers['content-type']), /^application\/json/);
    assert.deepEqual(
      seen.map((r) => [r.headers['x-ratelimit-limit'], r.headers['x-ratelimit-remaining']]),
      [
        ['3', '2'],
        ['3', '1'],
        ['3', '0'],
        ['3', '0'],
      ],
    );
    const now = Date.now() / 1000;
    const reset = Number(refused.headers['x-ratelimit-reset']);
    assert.ok(reset > now && reset <= now + 31, `reset ${reset} vs now ${now}: full again within 30 s`);
  });

  test('two API keys and two subjects get independent budgets; anonymous callers are keyed by IP', async () => {
    for (const key of ['key-one', 'key-two']) {
      const { answers } = await burst([`${a.url}/apikey`, `${b.url}/apikey`], 6, { 'x-api-key': key });
      assert.equal(statusCounts(answers)[200], 3, key);
    }
    for (const sub of ['alice', 'bob']) {
      const { answers } = await burst([`${a.url}/sub`, `${b.url}/sub`], 5, { 'x-test-sub': sub });
      assert.equal(statusCounts(answers)[200], 2, sub);
    }
    // Without a subject: the client IP's bucket, not one bucket for everyone anonymous.
    for (const ip of ['10.3.3.1', '10.3.3.2']) {
      const { answers } = await burst([`${a.url}/sub`], 4, { 'x-forwarded-for': ip });
      assert.equal(statusCounts(answers)[200], 2, ip);
    }
  });

  test('a spoofed X-Forwarded-For from an untrusted peer does not change its bucket', async () => {
    const answers = [];
    for (let i = 0; i < 7; i++) {
      answers.push(
        await get(`${i % 2 ? a.url : b.url}/own`, {
          from: '127.0.0.2',
          headers: { 'x-forwarded-for': `203.0.113.${i}` },
        }),
      );
    }
    assert.deepEqual(
      answers.map((r) => r.status),
      [200, 200, 200, 200, 200, 429, 429],
    );
  });

  test('IPv6 clients share a bucket per /64', async () => {
    const statuses = [];
    for (const ip of ['2001:db8:1:2::1', '2001:db8:1:2::ffff', '2001:db8:1:2:a:b:c:d']) {
      for (let i = 0; i < 2; i++)
        statuses.push((await get(`${a.url}/own`, { headers: { 'x-forwarded-for': ip } })).status);
    }
    assert.deepEqual(statuses, [200, 200, 200, 200, 200, 429]);
    const other = await get(`${b.url}/own`, { headers: { 'x-forwarded-for': '2001:db8:1:3::1' } });
    assert.equal(other.status, 200, 'the next /64 is another client');
  });

  test('X-Forwarded-For through a trusted proxy selects the client bucket', async () => {
    for (const ip of ['198.51.100.1', '198.51.100.2']) {
      const { answers } = await burst([`${a.url}/own`, `${b.url}/own`], 7, { 'x-forwarded-for': ip });
      assert.equal(statusCounts(answers)[200], 5, ip);
    }
  });
});

describe('ratelimit with the embedded store: the workers of one instance share one budget', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway(
      {
        server: { workers: 2 },
        routes: routes(upstream),
        rate_limit: { requests_per_second: RPS, burst: BURST },
      },
      { entry: ENTRY, env: { REDIS_URL: '' } },
    );
  });
  after(async () => {
    await gw?.stop();
  });

  test('a concurrent burst admits exactly the allowance', async () => {
    const { answers, elapsed } = await burst([`${gw.url}/ip`], 100, {});
    const counts = statusCounts(answers);
    const tolerance = Math.floor(elapsed * RPS);
    assert.ok(
      (counts[200] ?? 0) >= BURST && (counts[200] ?? 0) <= BURST + tolerance,
      `admitted ${counts[200]} in ${elapsed.toFixed(2)} s; allowance ${BURST}+${tolerance}`,
    );
    assert.equal((counts[200] ?? 0) + (counts[429] ?? 0), 100, JSON.stringify(counts));
    assert.equal(new Set(answers.map((r) => r.headers['x-worker-pid'])).size, 2, 'both workers answered');
    assert.ok(gw.records().some((r) => r.msg === 'rate-limit store: embedded (shared by this instance)'));
  });
});
