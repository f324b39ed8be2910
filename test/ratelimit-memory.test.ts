import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { Agent } from 'node:http';
import { after, before, test } from 'node:test';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { sleep } from './helpers/net.js';
import { get } from './helpers/ratelimit.js';
import { integerReply, type RunningRedis, startRedis } from './helpers/redis.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * 100k distinct clients (distinct X-Forwarded-For through a trusted proxy) must not grow a
 * worker without bound, and their Redis keys must expire. The bucket (10/s, burst 5) is
 * full again 100 ms after one request, so each key's PX is 100 ms.
 */
const CLIENTS = 100_000;
const CONCURRENCY = 64;

let upstream: Upstream;
let redis: RunningRedis;
let gw: RunningGateway;
before(async () => {
  upstream = await startUpstream((_req, res) => res.end('ok'));
  redis = await startRedis();
  gw = await startGateway({
    server: { workers: 1, trusted_proxies: ['127.0.0.1'] },
    routes: [{ path: '/limited', target: upstream.url, middleware: ['ratelimit'] }],
    rate_limit: { requests_per_second: 10, burst: 5 },
    redis: { url: redis.url },
  });
});
after(async () => {
  await gw?.stop();
  await redis?.stop();
  await upstream?.close();
});

async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]) / 1024;
}

const ipOf = (i: number) => `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;

test(`${CLIENTS} distinct clients: worker memory stays bounded and Redis keys expire`, async (t) => {
  const workerPid = Number((await gw.waitFor((r) => r.msg === 'worker listening')).pid);
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
  const before = await rssMb(workerPid);
  while (next < CLIENTS) {
    assert.ok(Date.now() < deadline, `sent ${next} requests within the time budget`);
    await run(Math.min(10_000, CLIENTS - next));
    peakKeys = Math.max(peakKeys, integerReply(await redis.command('DBSIZE')));
  }
  const afterRun = await rssMb(workerPid);
  agent.destroy();
  assert.equal(failures, 0, 'every distinct client got its first request through');
  t.diagnostic(
    `worker RSS ${before.toFixed(1)} MB after warm-up, ${afterRun.toFixed(1)} MB after ${CLIENTS} clients; peak DBSIZE sampled ${peakKeys}`,
  );
  assert.ok(afterRun - before < 40, `worker RSS grew ${(afterRun - before).toFixed(1)} MB`);
  assert.ok(afterRun < 200, `worker RSS ${afterRun.toFixed(1)} MB`);
  // Keys expire on their own (PX = time to full): Redis empties without any sweeper.
  const until = Date.now() + 5_000;
  let keys = integerReply(await redis.command('DBSIZE'));
  while (keys > 0 && Date.now() < until) {
    await sleep(200);
    keys = integerReply(await redis.command('DBSIZE'));
  }
  assert.equal(keys, 0, 'every key expired');
});
