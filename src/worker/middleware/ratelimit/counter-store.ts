import type { CounterState, WindowCounters } from '../../../shared/ratelimit/window-counters.js';

/**
 * Where quota and ban counters live: Redis (rate-limiter-flexible's RateLimiterRedis on the
 * limiter's own ioredis connection, redis-counters.ts), the primary (embedded store, over the
 * same IPC batches as the buckets) or, while either fails, the worker's memory (insurance).
 * Every operation touches one key, so it works unchanged on Redis Cluster.
 */
export interface CounterStore {
  /**
   * Adds `delta` (negative: a refund) to `key`, creating it to expire in `ttlSec` if it does
   * not exist; resolves with the count after and the milliseconds until it expires.
   */
  add(key: string, delta: number, ttlSec: number): Promise<CounterState>;
  /** The counter, or `undefined` when it does not exist (or expired). */
  get(key: string): Promise<CounterState | undefined>;
  /** Sets the counter to `count`, expiring in `ttlSec`. */
  set(key: string, count: number, ttlSec: number): Promise<void>;
}

/** The worker's insurance counters behind the same interface (used while the store is down). */
export class MemoryCounterStore implements CounterStore {
  constructor(readonly counters: WindowCounters) {}
  add(key: string, delta: number, ttlSec: number): Promise<CounterState> {
    return Promise.resolve(this.counters.add(key, delta, ttlSec * 1000));
  }
  get(key: string): Promise<CounterState | undefined> {
    return Promise.resolve(this.counters.get(key));
  }
  set(key: string, count: number, ttlSec: number): Promise<void> {
    this.counters.set(key, count, ttlSec * 1000);
    return Promise.resolve();
  }
}
