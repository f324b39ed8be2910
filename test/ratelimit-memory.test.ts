import assert from 'node:assert/strict';
import { Agent } from 'node:http';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { sleep } from './helpers/net.js';
import { get } from './helpers/ratelimit.js';
import { integerReply, type RunningRedis, startRedis } from './helpers/redis.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * 100k distinct clients (distinct X-Forwarded-For through a trusted proxy) must not grow a
 * worker without bound, and their Redis keys must expire. The bucket (10/s, burst 5) is
 * full again 100 ms after one request, so each key's PX is 100 ms. Memory is the worker's
 * V8 heap after a full GC (RSS alone moves by tens of MB with load and GC timing, more than
 * a per-key leak of 100k small entries would add); RSS is reported and loosely bounded.
 */
const ENTRY = fileURLToPath(new URL('./fixtures/ratelimit-entry.js', import.meta.url));
const CLIENTS = 100_000;
const CONCURRENCY = 64;

let upstream: Upstream;
let redis: RunningRedis;
let gw: RunningGateway;
before(async () => {
  upstream = await startUpstream((_req, res) => res.end('ok'));
  redis = await startRedis();
  gw = await startGateway(
    {
      server: { workers: 1, trusted_proxies: ['127.0.0.1'] },
      routes: [
        { path: '/limited', target: upstream.url, middleware: ['ratelimit'] },
        { path: '/heap', target: upstream.url, middleware: ['test-heap'] },
      ],
      rate_limit: { requests_per_second: 10, burst: 5 },
      redis: { url: redis.url },
    },
    { entry: ENTRY, env: { NODE_OPTIONS: '--expose-gc' } },
  );
});
after(async () => {
  await gw?.stop();
  await redis?.stop();
  await upstream?.close();
});

const MB = 1024 * 1024;
async function memory(): Promise<{ heapUsed: number; rss: number }> {
  const reply = await get(`${gw.url}/heap`);
  return JSON.parse(reply.body) as { heapUsed: number; rss: number };
}

const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

test(`${CLIENTS} distinct clients: worker memory stays bounded and Redis keys expire`, async (t) => {
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
  let next = 0;
  let failures = 0;
  let peakKeys = 0;
  const run = async (count: number) => {
    const end = next + count;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < end) {
          const reply = await get(`${gw.url}/limited`, {
            agent,
            headers: { 'x-forwarded-for': ipOf(next++) },
          });
          if (reply.status !== 200) failures++;
        }
      }),
    );
  };
  const deadline = Date.now() + 120_000;
  await run(5_000); // warm-up: JIT, pools, heap growth
  const before = await memory();
  while (next < CLIENTS) {
    assert.ok(Date.now() < deadline, `sent ${next} requests within the time budget`);
    await run(Math.min(10_000, CLIENTS - next));
    peakKeys = Math.max(peakKeys, integerReply(await redis.command('DBSIZE')));
  }
  const afterRun = await memory();
  agent.destroy();
  assert.equal(failures, 0, 'every distinct client got its first request through');
  const heapGrowth = (afterRun.heapUsed - before.heapUsed) / MB;
  t.diagnostic(
    `worker heap after GC ${(before.heapUsed / MB).toFixed(1)} MB after warm-up, ${(afterRun.heapUsed / MB).toFixed(1)} MB after ${CLIENTS} clients; RSS ${(before.rss / MB).toFixed(1)} -> ${(afterRun.rss / MB).toFixed(1)} MB; peak DBSIZE sampled ${peakKeys}`,
  );
  // 100k retained keys would be well over 5 MB (key string + map entry ≈ 100 B each).
  assert.ok(heapGrowth < 4, `worker heap grew ${heapGrowth.toFixed(1)} MB`);
  assert.ok(afterRun.rss < 250 * MB, `worker RSS ${(afterRun.rss / MB).toFixed(1)} MB`);
  // Keys expire on their own (PX = time to full): Redis empties without any sweeper.
  const until = Date.now() + 5_000;
  let keys = integerReply(await redis.command('DBSIZE'));
  while (keys > 0 && Date.now() < until) {
    await sleep(200);
    keys = integerReply(await redis.command('DBSIZE'));
  }
  assert.equal(keys, 0, 'every key expired');
});
