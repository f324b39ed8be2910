import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { freePort, sleep } from './helpers/net.js';
import { type Answer, get, statusCounts } from './helpers/ratelimit.js';
import { integerReply, type RunningSentinel, startRedisSentinel } from './helpers/redis.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Black-box, against one master, one replica and three sentinels (quorum 2) on loopback.
 * Buckets refill at 0.1 token/s; each check spends a burst on instance A and asks B.
 */
const ENTRY = fileURLToPath(new URL('./fixtures/ratelimit-entry.js', import.meta.url));
const BURST = 5;

let upstream: Upstream;
let sentinel: RunningSentinel;
let a: RunningGateway;
let b: RunningGateway;
let adminA: number;

before(async () => {
  [upstream, sentinel] = await Promise.all([startUpstream(), startRedisSentinel()]);
  const config = {
    server: { workers: 2, trusted_proxies: ['127.0.0.1'] },
    routes: [{ path: '/ip', target: upstream.url, middleware: ['test-claims', 'ratelimit'] }],
    rate_limit: { requests_per_second: 0.1, burst: BURST, on_store_error: 'allow' },
    metrics: { prometheus: { enabled: true } },
    redis: { sentinel: { name: sentinel.name, nodes: sentinel.sentinels } },
  };
  adminA = await freePort();
  [a, b] = await Promise.all([
    startGateway({ ...config, admin: { port: adminA } }, { entry: ENTRY }),
    startGateway(config, { entry: ENTRY }),
  ]);
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all([sentinel?.stop(), upstream?.close()]);
});

const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });

/** Spends `ip`'s burst on A; true when B then refuses it (one shared bucket). */
async function sharedLimit(ip: string): Promise<boolean> {
  const spent = await Promise.all(Array.from({ length: BURST }, () => get(`${a.url}/ip`, from(ip))));
  assert.equal(statusCounts(spent)[200], BURST);
  return (await get(`${b.url}/ip`, from(ip))).status === 429;
}

describe('ratelimit on Redis behind Sentinel (1 master, 1 replica, 3 sentinels)', () => {
  test('both instances share buckets on the master the sentinels name', async () => {
    assert.ok(await sharedLimit('10.8.0.1'));
    assert.ok(integerReply(await sentinel.master.command('DBSIZE')) >= 1, 'buckets on the master');
  });

  test('the master killed under steady load: no 5xx; after the promotion limits are shared again', async () => {
    const answers: Answer[] = [];
    let loading = true;
    const load = (async () => {
      for (let i = 0; loading && i < 3_000; i++) {
        answers.push(await get(`${(i % 2 === 0 ? a : b).url}/ip`, from(`10.9.${i % 200}.1`)));
        await sleep(10);
      }
    })();
    await sleep(300);
    sentinel.master.kill('SIGKILL');
    const deadline = Date.now() + 30_000;
    while ((await sentinel.masterPort()) !== sentinel.replica.port) {
      assert.ok(Date.now() < deadline, 'the sentinels promoted the replica within 30 s');
      await sleep(200);
    }
    let shared = false;
    for (let round = 0; !shared && round < 20; round++) {
      shared = await sharedLimit(`10.10.${round}.1`);
      if (!shared) await sleep(1_000);
    }
    loading = false;
    await load;
    // Every worker's next request after its probe interval finds the store again.
    await sleep(1_100);
    await Promise.all(
      [a, b].flatMap((gw) => Array.from({ length: 8 }, (_, i) => get(`${gw.url}/ip`, from(`10.12.${i}.1`)))),
    );
    assert.ok(shared, 'shared limiting resumed on the promoted replica');
    assert.ok(answers.length > 20, `steady load sent ${answers.length}`);
    const statuses = statusCounts(answers);
    assert.deepEqual(
      Object.keys(statuses).filter((s) => Number(s) >= 500),
      [],
      `no 5xx during the failover: ${JSON.stringify(statuses)}`,
    );
    assert.ok(integerReply(await sentinel.replica.command('DBSIZE')) >= 1, 'buckets on the new master');
    for (const gw of [a, b]) {
      const lost = gw.records().filter((r) => String(r.msg).startsWith('rate-limit store unavailable'));
      const back = gw.records().filter((r) => String(r.msg).startsWith('rate-limit store available again'));
      assert.ok(lost.length >= 1, 'the loss was logged');
      assert.ok(
        lost.every((r) => r.level === 50),
        'at error level',
      );
      assert.equal(back.length, lost.length, 'each loss is followed by one recovery line');
    }
    const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${adminA}/metrics`)).text());
    assert.ok(sum(metrics, 'portico_redis_failovers_total') >= 1, 'failover counted');
    assert.equal(sum(metrics, 'portico_redis_up', { role: 'master' }), 1);
    assert.equal(sum(metrics, 'portico_redis_up', { role: 'sentinel' }), 1);
  });
});
