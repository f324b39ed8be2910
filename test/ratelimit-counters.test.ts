import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { WindowCounters } from '../src/shared/ratelimit/window-counters.js';
import { type CounterStore, MemoryCounterStore } from '../src/worker/middleware/ratelimit/counter-store.js';
import { RedisCounters } from '../src/worker/middleware/ratelimit/redis-counters.js';
import { createRedisClient } from '../src/worker/middleware/ratelimit/redis-store.js';
import { startEmbeddedStore } from './helpers/embedded-store.js';
import { sleep } from './helpers/net.js';
import { type RunningRedis, startRedis } from './helpers/redis.js';

/*
 * One contract for every quota/ban counter store (STYLE principle 4): rate-limiter-flexible's
 * RateLimiterRedis on a real redis-server, the embedded store over real IPC, and memory.
 */
interface Harness {
  store: CounterStore;
  close(): Promise<void>;
}

let redis: RunningRedis;
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis?.stop();
});

const implementations: [string, () => Promise<Harness>][] = [
  [
    'memory',
    () => {
      const counters = new WindowCounters(10_000);
      return Promise.resolve({
        store: new MemoryCounterStore(counters),
        close: () => Promise.resolve(counters.close()),
      });
    },
  ],
  [
    'redis (rate-limiter-flexible RateLimiterRedis)',
    async () => {
      const client = createRedisClient({ url: redis.url, commandTimeoutMs: 2_000 });
      await new Promise((resolve) => client.once('ready', resolve));
      const store = new RedisCounters(client, `test:${randomUUID()}:quota`);
      return { store, close: () => Promise.resolve(client.disconnect()) };
    },
  ],
  ['embedded (ClusterStore over IPC to the primary-side host)', startEmbeddedStore],
];

for (const [name, make] of implementations) {
  describe(`counter store contract: ${name}`, () => {
    let harness: Harness;
    before(async () => {
      harness = await make();
    });
    after(async () => {
      await harness?.close();
    });

    test('concurrent adds count exactly; a refund takes one back; the expiry is set by the first add', async () => {
      const { store } = harness;
      const states = await Promise.all(Array.from({ length: 20 }, () => store.add('k', 1, 60)));
      assert.deepEqual(
        states.map(([n]) => n).sort((x, y) => x - y),
        Array.from({ length: 20 }, (_, i) => i + 1),
      );
      for (const [, msLeft] of states) assert.ok(msLeft > 55_000 && msLeft <= 60_000, `${msLeft} ms`);
      const [afterRefund, msLeft] = await store.add('k', -1, 3_600);
      assert.equal(afterRefund, 19);
      assert.ok(msLeft <= 60_000, 'a later add keeps the first expiry');
      assert.deepEqual((await store.get('k'))?.[0], 19);
    });

    test('get of a missing counter is undefined; set replaces the value and the expiry', async () => {
      const { store } = harness;
      assert.equal(await store.get('missing'), undefined);
      await store.set('ban', 1, 600);
      const state = await store.get('ban');
      assert.equal(state?.[0], 1);
      assert.ok((state?.[1] ?? 0) > 590_000);
    });

    test('a counter expires with its window', async () => {
      const { store } = harness;
      await store.add('short', 1, 1);
      await sleep(1_200);
      assert.equal(await store.get('short'), undefined);
      assert.deepEqual((await store.add('short', 1, 1))[0], 1);
    });
  });
}
