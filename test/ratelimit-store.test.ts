import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { BlockedKeys } from '../src/worker/middleware/ratelimit/blocked-keys.js';
import { compilePolicy, nextTokenInUs, remainingOf } from '../src/shared/ratelimit/gcra.js';
import { STORE_UNAVAILABLE, WorkerLimiter } from '../src/worker/middleware/ratelimit/limiter.js';
import { MemoryBuckets } from '../src/shared/ratelimit/memory-buckets.js';
import { MemoryStore } from '../src/worker/middleware/ratelimit/memory-store.js';
import { createRedisClient, RedisStore } from '../src/worker/middleware/ratelimit/redis-store.js';
import { defineTakeCommand } from '../src/worker/middleware/ratelimit/lua.js';
import { createRedisConnection } from '../src/worker/middleware/ratelimit/redis-connection.js';
import { parseRedisNode } from '../src/shared/config/settings.js';
import type { LimiterStore } from '../src/worker/middleware/ratelimit/store.js';
import { startEmbeddedStore } from './helpers/embedded-store.js';
import { freePort, sleep } from './helpers/net.js';
import { type RunningCluster, type RunningRedis, startRedis, startRedisCluster } from './helpers/redis.js';

/*
 * One contract, every store (STYLE principle 4). Real time, real Redis, real IPC: the
 * refusal checks use a 5 s refill interval so no scheduling stall on a busy machine can
 * refill a token in between; the refill check only waits longer than needed.
 */
interface Harness {
  store: LimiterStore;
  close(): Promise<void>;
}

let redis: RunningRedis;
let cluster: RunningCluster;
before(async () => {
  [redis, cluster] = await Promise.all([startRedis(), startRedisCluster({ replicas: 0 })]);
});
after(async () => {
  await Promise.all([redis?.stop(), cluster?.stop()]);
});

const implementations: [string, () => Promise<Harness>][] = [
  [
    'memory',
    () => {
      const store = new MemoryStore({ maxKeys: 10_000 });
      return Promise.resolve({ store, close: () => store.close() });
    },
  ],
  [
    'redis (Lua script through ioredis)',
    async () => {
      const client = createRedisClient({ url: redis.url, commandTimeoutMs: 2_000 });
      await new Promise((resolve) => client.once('ready', resolve));
      const store = new RedisStore(client, `test:${randomUUID()}:`);
      return { store, close: () => store.close() };
    },
  ],
  [
    'redis cluster (one script call per key, routed by it)',
    async () => {
      const client = defineTakeCommand(
        createRedisConnection(
          { mode: 'cluster', url: '', sentinelName: '', nodes: cluster.seeds.map(parseRedisNode) },
          { commandTimeoutMs: 2_000 },
        ),
      );
      await new Promise((resolve) => client.once('ready', resolve));
      const store = new RedisStore(client, `test:${randomUUID()}:`);
      return { store, close: () => store.close() };
    },
  ],
  ['embedded (ClusterStore over IPC to the primary-side host)', startEmbeddedStore],
];

for (const [name, make] of implementations) {
  describe(`limiter store contract: ${name}`, () => {
    let harness: Harness;
    before(async () => {
      harness = await make();
    });
    after(async () => {
      await harness?.close();
    });
    const slow = compilePolicy(0.2, 3); // one token per 5 s

    test('a full bucket admits exactly burst requests, counting remaining down to 0', async () => {
      const key = randomUUID();
      const remaining: number[] = [];
      for (let i = 0; i < 3; i++) {
        const decision = await harness.store.take(key, slow);
        assert.equal(decision.allowed, true);
        remaining.push(remainingOf(decision, slow));
      }
      assert.deepEqual(remaining, [2, 1, 0]);
      const refused = await harness.store.take(key, slow);
      assert.equal(refused.allowed, false);
      assert.equal(remainingOf(refused, slow), 0);
      const wait = nextTokenInUs(refused, slow);
      assert.ok(wait > 0 && wait <= slow.intervalUs, `next token in ${wait} µs`);
      // Refusals take nothing: the wait only shrinks with time.
      const again = await harness.store.take(key, slow);
      assert.equal(again.allowed, false);
      assert.ok(nextTokenInUs(again, slow) <= wait);
    });

    test('concurrent takes on one key admit exactly the burst', async () => {
      const key = randomUUID();
      const policy = compilePolicy(0.2, 10);
      const decisions = await Promise.all(Array.from({ length: 40 }, () => harness.store.take(key, policy)));
      assert.equal(decisions.filter((d) => d.allowed).length, 10);
    });

    test('concurrent takes over many keys (one turn, many slots) admit exactly the burst per key', async () => {
      const policy = compilePolicy(0.2, 3);
      const keys = Array.from({ length: 8 }, () => randomUUID());
      const decisions = await Promise.all(
        Array.from({ length: 40 }, (_, i) => harness.store.take(keys[i % keys.length] as string, policy)),
      );
      for (let k = 0; k < keys.length; k++) {
        const admitted = decisions.filter((d, i) => i % keys.length === k && d.allowed).length;
        assert.equal(admitted, 3, `key ${k}`);
      }
    });

    test('keys have independent buckets', async () => {
      const one = compilePolicy(0.2, 1);
      const [a, b] = [randomUUID(), randomUUID()];
      assert.equal((await harness.store.take(a, one)).allowed, true);
      assert.equal((await harness.store.take(a, one)).allowed, false);
      assert.equal((await harness.store.take(b, one)).allowed, true);
    });

    test('tokens come back at the refill rate', async () => {
      const fast = compilePolicy(20, 2); // one token per 50 ms
      const key = randomUUID();
      await harness.store.take(key, fast);
      await harness.store.take(key, fast);
      await sleep(120);
      const decision = await harness.store.take(key, fast);
      assert.equal(decision.allowed, true);
    });
  });
}

describe('redis store specifics', () => {
  test('keys carry an expiry equal to the time until their bucket is full', async () => {
    const client = createRedisClient({ url: redis.url, commandTimeoutMs: 2_000 });
    await new Promise((resolve) => client.once('ready', resolve));
    const store = new RedisStore(client, 'ttl-test:');
    await store.take('k', compilePolicy(0.2, 3)); // full in 5 s
    const pttl = await client.pttl('ttl-test:{k}'); // the limiter key is the hash tag
    assert.ok(pttl > 0 && pttl <= 5_000, `PTTL ${pttl}`);
    await store.close();
  });

  test('the takes of one event-loop turn travel as one script call; a hot key is written once', async () => {
    const client = createRedisClient({ url: redis.url, commandTimeoutMs: 2_000 });
    await new Promise((resolve) => client.once('ready', resolve));
    const store = new RedisStore(client, 'batch-test:');
    const policy = compilePolicy(1, 5);
    await store.take('warm', policy); // EVAL/EVALSHA fallback settled before counting
    await redis.command('CONFIG', 'RESETSTAT');
    const keys = [...Array.from({ length: 30 }, () => 'hot'), 'a', 'b', 'c'];
    const decisions = await Promise.all(keys.map((key) => store.take(key, policy)));
    assert.equal(decisions.filter((d, i) => keys[i] === 'hot' && d.allowed).length, 5);
    assert.ok(decisions.slice(30).every((d) => d.allowed));
    const stats = await redis.command('INFO', 'commandstats');
    const calls = (name: string) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0);
    assert.equal(calls('evalsha') + calls('eval'), 1, stats);
    assert.equal(calls('set'), 4, 'hot, a, b and c are each written once');
    await store.close();
  });

  test('a Redis that is not there fails fast instead of queueing', async () => {
    const port = await freePort();
    const client = createRedisClient({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 250 });
    client.on('error', () => {});
    const store = new RedisStore(client, 'x:');
    const start = performance.now();
    await assert.rejects(store.take('k', compilePolicy(1, 1)));
    assert.ok(performance.now() - start < 1_000);
    await store.close();
  });
});

describe('worker limiter in front of a failing store', () => {
  const make = async (onStoreError: 'allow' | 'deny') => {
    const port = await freePort(); // nothing listens there: every command fails at once
    const client = createRedisClient({ url: `redis://127.0.0.1:${port}`, commandTimeoutMs: 250 });
    client.on('error', () => {});
    const store = new RedisStore(client, 'x:');
    const states: string[] = [];
    const warnings: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => warnings.push(line) });
    const limiter = new WorkerLimiter({
      store,
      storeName: 'redis',
      insurance: new MemoryBuckets({ maxKeys: 100 }),
      blocked: new BlockedKeys(100),
      onStoreError,
      probeIntervalMs: 60_000,
      logger,
      hooks: { rateLimitStoreUp: (name, up) => states.push(`${name}:${up ? 'up' : 'down'}`) },
    });
    return { limiter, store, states, warnings };
  };

  test('allow: the insurance bucket decides exactly; the transition is reported once', async (t) => {
    const { limiter, store, states, warnings } = await make('allow');
    // Closed even when an assertion fails: an open store keeps the test file from exiting.
    t.after(() => store.close());
    const policy = compilePolicy(0.2, 3);
    const verdicts = [];
    for (let i = 0; i < 10; i++) verdicts.push(await limiter.take('k', policy));
    assert.deepEqual(
      verdicts.map((v) => (v === STORE_UNAVAILABLE ? 'unavailable' : `${v.allowed}:${v.degraded}`)),
      [...Array<string>(3).fill('true:true'), ...Array<string>(7).fill('false:true')],
    );
    // The initial state is announced once at construction, then each transition once.
    assert.deepEqual(states, ['redis:up', 'redis:down']);
    assert.equal(warnings.filter((w) => w.includes('rate-limit store unavailable')).length, 1);
  });

  test('deny: every request is refused as unavailable while the store is down', async (t) => {
    const { limiter, store } = await make('deny');
    t.after(() => store.close());
    const policy = compilePolicy(0.2, 3);
    for (let i = 0; i < 3; i++) assert.equal(await limiter.take('k', policy), STORE_UNAVAILABLE);
  });
});
