import { type BucketPolicy, type Decision, gcraTake } from './gcra.js';

/** Monotonic microseconds: wall-clock jumps must not refill or drain buckets. */
export const monotonicUs = (): number => Math.floor(performance.now() * 1000);

export interface MemoryBucketsOptions {
  /** At most this many keys; beyond it the least recently used bucket is forgotten. */
  maxKeys: number;
  /** How often idle (full) buckets are swept out; the sweep timer is unref'd. */
  sweepIntervalMs?: number;
  now?: () => number;
}

/**
 * Token buckets in a bounded in-process map (the per-worker insurance limiter while Redis
 * is down, and the embedded store the primary runs for its workers).
 *
 * Bounded twice: a bucket that has refilled is indistinguishable from a missing one, so
 * idle keys are swept; and `maxKeys` caps the map, dropping the least recently used bucket
 * (a flood of distinct keys can then only make limiting more lenient, never use memory).
 */
export class MemoryBuckets {
  // Map iteration order is insertion order; every update re-inserts, so the front is the LRU.
  readonly #tats = new Map<string, number>();
  readonly #maxKeys: number;
  readonly #now: () => number;
  readonly #sweeper: NodeJS.Timeout;

  constructor(options: MemoryBucketsOptions) {
    this.#maxKeys = options.maxKeys;
    this.#now = options.now ?? monotonicUs;
    this.#sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 5_000);
    this.#sweeper.unref();
  }

  get size(): number {
    return this.#tats.size;
  }

  take(key: string, policy: BucketPolicy): Decision {
    const now = this.#now();
    const step = gcraTake(this.#tats.get(key), now, policy);
    if (step.allowed) {
      this.#tats.delete(key);
      if (this.#tats.size >= this.#maxKeys) this.#evictOldest();
      this.#tats.set(key, step.tat);
    }
    return { allowed: step.allowed, fullInUs: step.fullInUs };
  }

  /** Drops refilled buckets from the LRU end until the first one still in use. */
  sweep(): void {
    const now = this.#now();
    for (const [key, tat] of this.#tats) {
      if (tat > now) break;
      this.#tats.delete(key);
    }
  }

  #evictOldest(): void {
    const oldest = this.#tats.keys().next();
    if (oldest.done !== true) this.#tats.delete(oldest.value);
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#tats.clear();
  }
}
