import { monotonicUs } from '../../../shared/ratelimit/memory-buckets.js';

/**
 * Keys the store refused, until their next token: while blocked, no request for the key
 * can be admitted anywhere (refusals take nothing and the bucket only refills with time),
 * so answering 429 locally is exact and spares a store round trip per request of a client
 * hammering one key. The block starts from when the take was *sent*, which is never later
 * than the store's own clock, so it can only end early, never late. Bounded like the
 * buckets: expired entries are dropped when read, the oldest when full.
 */
export class BlockedKeys {
  readonly #until = new Map<string, number>();
  constructor(
    private readonly maxKeys: number,
    private readonly now: () => number = monotonicUs,
  ) {}

  /** Microseconds the key stays blocked, or 0. */
  blockedForUs(key: string): number {
    const until = this.#until.get(key);
    if (until === undefined) return 0;
    const left = until - this.now();
    if (left > 0) return left;
    this.#until.delete(key);
    return 0;
  }

  block(key: string, untilUs: number): void {
    this.#until.delete(key);
    if (this.#until.size >= this.maxKeys) {
      const oldest = this.#until.keys().next();
      if (oldest.done !== true) this.#until.delete(oldest.value);
    }
    this.#until.set(key, untilUs);
  }

  get size(): number {
    return this.#until.size;
  }
}
