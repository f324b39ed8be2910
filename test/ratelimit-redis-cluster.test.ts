import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { freePort, sleep } from './helpers/net.js';
import { type Answer, get, statusCounts } from './helpers/ratelimit.js';
import {
  commandCalls,
  integerReply,
  type RunningCluster,
  type RunningRedis,
  startRedis,
  startRedisCluster,
} from './helpers/redis.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Black-box, against a real Redis Cluster of 3 masters and 3 replicas on loopback (one for
 * the whole file: creating it is the slow part). Buckets refill at 0.1 token/s, so a burst
 * lasting `elapsed` s may admit floor(elapsed / 10) more than the allowance, and no more.
 */
const ENTRY = fileURLToPath(new URL('./fixtures/ratelimit-entry.js', import.meta.url));
const RPS = 0.1;
const BURST = 10;
const PREFIX = 'portico:rl:';
/** The bucket key of a client address under the global scope (see key.ts, redis-store.ts). */
const bucketKey = (ip: string) => `${PREFIX}{g|ip:${ip}}`;
const SCRIPT_COMMANDS = ['evalsha', 'eval'] as const;

let upstream: Upstream;
let cluster: RunningCluster;
let a: RunningGateway;
let b: RunningGateway;
let adminA: number;

const config = (redis: Record<string, unknown>) => ({
  server: { workers: 2, trusted_proxies: ['127.0.0.1'] },
  routes: [{ path: '/ip', target: upstream.url, middleware: ['test-claims', 'ratelimit'] }],
  rate_limit: { requests_per_second: RPS, burst: BURST, on_store_error: 'allow' },
  metrics: { prometheus: { enabled: true } },
  redis,
});

before(async () => {
  [upstream, cluster] = await Promise.all([startUpstream(), startRedisCluster()]);
  const settings = config({ cluster: { nodes: cluster.seeds.slice(0, 2) } });
  adminA = await freePort();
  [a, b] = await Promise.all([
    startGateway({ ...settings, admin: { port: adminA } }, { entry: ENTRY }),
    startGateway(settings, { entry: ENTRY }),
  ]);
});
after(async () => {
  await Promise.all([a?.stop(), b?.stop()]);
  await Promise.all([cluster?.stop(), upstream?.close()]);
});

const from = (ip: string) => ({ headers: { 'x-forwarded-for': ip } });

/** The master that holds `ip`'s bucket now. */
async function masterOfClient(ip: string): Promise<RunningRedis> {
  const live = cluster.nodes.find((n) => n.pid !== -1) as RunningRedis;
  return cluster.masterOf(integerReply(await live.command('CLUSTER', 'KEYSLOT', bucketKey(ip))));
}

/** Sum of `only` commands over every live node since its last CONFIG RESETSTAT. */
async function clusterCalls(only: readonly string[]): Promise<number> {
  let total = 0;
  for (const node of cluster.nodes) {
    try {
      total += commandCalls(await node.command('INFO', 'commandstats'), only);
    } catch {
      // a node killed by a test
    }
  }
  return total;
}

/*
 * Quotas and the ban count in the cluster through rate-limiter-flexible (RateLimiterRedis
 * on the ioredis Cluster): every counter command touches one key, so one slot. Declared
 * before the failover test, which kills a master. `deny`: a counter that fails answers 503.
 */
describe('quotas and ban on Redis Cluster, shared by two instances', () => {
  let qa: RunningGateway;
  let qb: RunningGateway;
  before(async () => {
    const settings = {
      ...config({ cluster: { nodes: cluster.seeds.slice(2, 4) } }),
      rate_limit: {
        requests_per_second: 100,
        burst: 100,
        on_store_error: 'deny',
        quotas: [{ limit: 5, per: 'minute' }],
        ban: { after: 3, within: '1m', for: '10m' },
      },
    };
    [qa, qb] = await Promise.all([
      startGateway(settings, { entry: ENTRY }),
      startGateway(settings, { entry: ENTRY }),
    ]);
  });
  after(async () => {
    await Promise.all([qa?.stop(), qb?.stop()]);
  });

  const MINUTE = 60_000;
  const nextMinuteMs = () => (Math.floor(Date.now() / MINUTE) + 1) * MINUTE;
  /** A check that must fit in one UTC minute first waits out a minute about to end. */
  const roomInMinute = async () => {
    const left = nextMinuteMs() - Date.now();
    if (left < 8_000) await sleep(left + 50);
  };
  const errorOf = (answer: Answer) => (JSON.parse(answer.body) as { error?: string }).error;
  /** The master that holds `key` now. */
  const holderOf = async (key: string) => {
    const live = cluster.nodes.find((n) => n.pid !== -1) as RunningRedis;
    return cluster.masterOf(integerReply(await live.command('CLUSTER', 'KEYSLOT', key)));
  };

  test('{limit: 5, per: minute} admits 5 across instances, then 429 naming the quota until the next minute', async () => {
    await roomInMinute();
    const seen: Answer[] = [];
    for (let i = 0; i < 7; i++) seen.push(await get(`${(i % 2 === 0 ? qa : qb).url}/ip`, from('10.6.0.1')));
    assert.deepEqual(
      seen.map((r) => [r.status, errorOf(r) ?? 'ok']),
      [
        ...Array.from({ length: 5 }, () => [200, 'ok']),
        [429, 'quota exceeded: minute'],
        [429, 'quota exceeded: minute'],
      ],
    );
    const expected = Math.ceil((nextMinuteMs() - Date.now()) / 1000);
    const retryAfter = Number(seen[5]?.headers['retry-after']);
    assert.ok(
      Math.abs(retryAfter - expected) <= 2,
      `Retry-After ${retryAfter}; the next minute in ${expected} s`,
    );
    // The count lives in the cluster, on the master that serves its key's slot.
    const window = new Date(nextMinuteMs() - MINUTE).toISOString().slice(0, 16);
    const key = `portico:rl:quota:g|ip:10.6.0.1|minute:${window}`;
    const holder = await holderOf(key);
    // Refunds are not awaited by the answer: give the last one a moment.
    let count = '';
    for (let i = 0; i < 20 && count !== '$1\r\n5\r\n'; i++) {
      if (i > 0) await sleep(50);
      count = await holder.command('GET', key);
    }
    assert.equal(count, '$1\r\n5\r\n', 'five admitted, refusals refunded');
  });

  test('a concurrent burst over 2 instances x 2 workers admits exactly the quota', async () => {
    await roomInMinute();
    const answers = await Promise.all(
      Array.from({ length: 30 }, (_, i) => get(`${(i % 2 === 0 ? qa : qb).url}/ip`, from('10.6.0.2'))),
    );
    assert.deepEqual(statusCounts(answers), { 200: 5, 429: 25 });
  });

  test('a key refused 3 times on one instance is banned on both', async () => {
    await roomInMinute();
    const ip = '10.6.0.3';
    const seen: Answer[] = [];
    for (let i = 0; i < 8; i++) {
      seen.push(await get(`${qa.url}/ip`, from(ip)));
      if (i >= 5) await sleep(100); // a refusal is counted after its answer
    }
    assert.deepEqual(statusCounts(seen), { 200: 5, 429: 3 });
    const onA = await get(`${qa.url}/ip`, from(ip));
    assert.deepEqual([onA.status, errorOf(onA)], [429, 'banned: too many refused requests']);
    // Instance b never refused this key: it learns the ban from the cluster.
    const onB = await get(`${qb.url}/ip`, from(ip));
    assert.deepEqual([onB.status, errorOf(onB)], [429, 'banned: too many refused requests']);
    const retryAfter = Number(onB.headers['retry-after']);
    assert.ok(retryAfter > 590 && retryAfter <= 600, `Retry-After ${retryAfter}: the ban lasts 10 min`);
  });
});

describe('ratelimit on Redis Cluster (3 masters + 3 replicas), two instances x two workers', () => {
  test('100 concurrent requests over keys spread across the slots admit exactly the burst per key', async () => {
    const ips = ['10.1.0.1', '10.1.0.2', '10.1.0.3', '10.1.0.4', '10.1.0.5'];
    const owners = new Set(await Promise.all(ips.map(async (ip) => (await masterOfClient(ip)).port)));
    assert.ok(owners.size >= 2, `the keys live on ${owners.size} master(s); spread them over several`);
    const start = performance.now();
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) => {
        const ip = ips[i % ips.length] as string;
        return get(`${(i % 2 === 0 ? a : b).url}/ip`, from(ip)).then((r) => ({ ip, r }));
      }),
    );
    const tolerance = Math.floor(((performance.now() - start) / 1000) * RPS);
    for (const ip of ips) {
      const counts = statusCounts(answers.filter((x) => x.ip === ip).map((x) => x.r));
      const admitted = counts[200] ?? 0;
      assert.ok(
        admitted >= BURST && admitted <= BURST + tolerance,
        `${ip}: admitted ${admitted} of 20, allowance ${BURST}+${tolerance}`,
      );
      assert.equal(admitted + (counts[429] ?? 0), 20, JSON.stringify(counts));
    }
    assert.equal(
      new Set(answers.map((x) => x.r.headers['x-worker-pid'])).size,
      4,
      'all four workers answered',
    );
    // The hash tag is the whole limiter key: each bucket is where CLUSTER KEYSLOT says.
    for (const ip of ips) {
      const owner = await masterOfClient(ip);
      assert.equal(
        integerReply(await owner.command('EXISTS', bucketKey(ip))),
        1,
        `${ip}'s bucket on its master`,
      );
    }
  });

  test('Redis script calls per request stay at most those of a standalone Redis', async () => {
    const standalone = await startRedis();
    const single = await startGateway(config({ url: standalone.url }), { entry: ENTRY });
    try {
      const measure = async (gateway: RunningGateway, calls: () => Promise<number>, tag: string) => {
        const before = await calls();
        // Sequential requests (each its own turn) over several keys and slots...
        for (let i = 0; i < 12; i++) await get(`${gateway.url}/ip`, from(`10.2.${tag}.${i % 4}`));
        const sequential = (await calls()) - before;
        // ...and a concurrent burst on one hot key.
        await Promise.all(Array.from({ length: 30 }, () => get(`${gateway.url}/ip`, from(`10.3.${tag}.1`))));
        const concurrent = (await calls()) - before - sequential;
        return { sequential: sequential / 12, concurrent: concurrent / 30 };
      };
      const one = await measure(
        single,
        async () => commandCalls(await standalone.command('INFO', 'commandstats'), SCRIPT_COMMANDS),
        '1',
      );
      const many = await measure(a, () => clusterCalls(SCRIPT_COMMANDS), '2');
      assert.ok(
        many.sequential <= one.sequential,
        `sequential: cluster ${many.sequential}, standalone ${one.sequential}`,
      );
      assert.ok(many.concurrent <= 1, `hot key: cluster ${many.concurrent} calls per request`);
      assert.ok(one.sequential <= 1, `standalone ${one.sequential}`);
    } finally {
      await single.stop();
      await standalone.stop();
    }
  });

  test('a master killed under steady load: no 5xx; after the promotion both instances share limits again', async () => {
    // Clients whose buckets live on the master about to die (found before it dies).
    const victim = await masterOfClient('10.1.0.1');
    const ips: string[] = [];
    for (let i = 1; ips.length < 12 && i < 250; i++) {
      const ip = `10.4.0.${i}`;
      if ((await masterOfClient(ip)).port === victim.port) ips.push(ip);
    }
    assert.equal(ips.length, 12);
    const answers: Answer[] = [];
    let loading = true;
    const load = (async () => {
      for (let i = 0; loading && i < 3_000; i++) {
        answers.push(await get(`${(i % 2 === 0 ? a : b).url}/ip`, from(`10.5.${i % 200}.1`)));
        await sleep(10);
      }
    })();
    await sleep(300);
    const slot = integerReply(await victim.command('CLUSTER', 'KEYSLOT', bucketKey(ips[0] as string)));
    victim.kill('SIGKILL');
    // Until the others mark it failed, they still name the dead master for its slots.
    const promotedBy = Date.now() + 30_000;
    while ((await cluster.masterOf(slot).catch(() => victim)).port === victim.port) {
      assert.ok(Date.now() < promotedBy, 'a replica took over within 30 s');
      await sleep(100);
    }
    await cluster.waitHealthy(30_000);
    // Shared limiting resumes by itself: a client that spent its burst on A is refused by B.
    // (While degraded, each worker decides alone from a full local bucket, so B admits.)
    let shared = false;
    for (const ip of ips) {
      const spent = await Promise.all(Array.from({ length: BURST }, () => get(`${a.url}/ip`, from(ip))));
      assert.equal(statusCounts(spent)[200], BURST);
      if ((await get(`${b.url}/ip`, from(ip))).status === 429) {
        shared = true;
        break;
      }
      await sleep(1_000);
    }
    loading = false;
    await load;
    // Every worker's next request after its probe interval finds the store again.
    await sleep(1_100);
    await Promise.all(
      [a, b].flatMap((gw) => Array.from({ length: 8 }, (_, i) => get(`${gw.url}/ip`, from(`10.11.${i}.1`)))),
    );
    assert.ok(shared, 'shared limiting resumed after the failover');
    const statuses = statusCounts(answers);
    assert.ok(answers.length > 20, `steady load sent ${answers.length}`);
    assert.deepEqual(
      Object.keys(statuses).filter((s) => Number(s) >= 500),
      [],
      `no 5xx during the failover: ${JSON.stringify(statuses)}`,
    );
    // Each worker that lost the store said so once at error level, and once when it came back.
    for (const gw of [a, b]) {
      const lost = gw.records().filter((r) => String(r.msg).startsWith('rate-limit store unavailable'));
      const back = gw.records().filter((r) => String(r.msg).startsWith('rate-limit store available again'));
      assert.ok(
        lost.every((r) => r.level === 50),
        'error level when lost',
      );
      assert.equal(back.length, lost.length, 'each loss is followed by one recovery line');
    }
    const metrics = parseMetrics(await (await fetch(`http://127.0.0.1:${adminA}/metrics`)).text());
    assert.ok(sum(metrics, 'portico_redis_failovers_total') >= 1, 'failover counted');
    assert.equal(sum(metrics, 'portico_redis_up', { role: 'master' }), 1);
  });
});
