import type { Cluster, Redis } from 'ioredis';
import { RateLimiterRedis, type RateLimiterRes } from 'rate-limiter-flexible';
import type { CounterState } from '../../../shared/ratelimit/window-counters.js';
import type { CounterStore } from './counter-store.js';

/**
 * Counters in Redis through rate-limiter-flexible: its atomic script (`SET NX EX` then
 * `INCRBY`, one key) counts, `reward` refunds. It never decides here (points are unbounded):
 * the quota middleware compares counts with every policy's limit, because it must refund a
 * request that another policy refused. Keys carry the window start (quota-window.ts), so the
 * library's first-consume windows never decide a boundary; they only expire old windows.
 */
export class RedisCounters implements CounterStore {
  readonly #limiter: RateLimiterRedis;

  constructor(client: Redis | Cluster, keyPrefix: string) {
    this.#limiter = new RateLimiterRedis({
      storeClient: client,
      keyPrefix,
      points: Number.MAX_SAFE_INTEGER,
      duration: 1,
      // A command while disconnected fails at once (the limiter's fallback decides).
      rejectIfRedisNotReady: true,
    });
  }

  add(key: string, delta: number, ttlSec: number): Promise<CounterState> {
    const options = { customDuration: ttlSec };
    const result =
      delta >= 0 ? this.#limiter.consume(key, delta, options) : this.#limiter.reward(key, -delta, options);
    return result.then(stateOf, (err: unknown) => {
      throw err instanceof Error ? err : new Error(`rate-limit counter refused: ${String(err)}`);
    });
  }

  async get(key: string): Promise<CounterState | undefined> {
    const res = await this.#limiter.get(key);
    return res === null ? undefined : stateOf(res);
  }

  async set(key: string, count: number, ttlSec: number): Promise<void> {
    await this.#limiter.set(key, count, ttlSec);
  }
}

const stateOf = (res: RateLimiterRes): CounterState => [res.consumedPoints, res.msBeforeNext];
