/** A counter's value and the milliseconds until it expires. */
export type CounterState = readonly [count: number, msLeft: number];

/**
 * Expiring counters in a bounded in-process map, with the semantics of rate-limiter-flexible's
 * Redis script (`SET key 0 EX ttl NX; INCRBY key delta`): a counter is created with its expiry
 * by the first `add` and keeps it. The primary's embedded store and each worker's insurance
 * limiter count quotas and bans here. Bounded by `maxKeys` (least recently written dropped
 * first, which can only make limiting more lenient) with no timer per key: an expired counter
 * is dropped when next read or evicted, and `sweep` clears expired ones from the LRU end.
 */
export class WindowCounters {
  // Map iteration order is insertion order; every write re-inserts, so the front is the LRU.
  readonly #entries = new Map<string, { count: number; expiresAt: number }>();
  readonly #sweeper: NodeJS.Timeout;

  constructor(
    private readonly maxKeys: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.#sweeper = setInterval(() => this.sweep(), 5_000);
    this.#sweeper.unref();
  }

  get size(): number {
    return this.#entries.size;
  }

  add(key: string, delta: number, ttlMs: number): CounterState {
    const now = this.now();
    let entry = this.#entries.get(key);
    if (entry === undefined || entry.expiresAt <= now) entry = { count: 0, expiresAt: now + ttlMs };
    entry.count += delta;
    this.#write(key, entry);
    return [entry.count, entry.expiresAt - now];
  }

  set(key: string, count: number, ttlMs: number): void {
    this.#write(key, { count, expiresAt: this.now() + ttlMs });
  }

  get(key: string): CounterState | undefined {
    const entry = this.#entries.get(key);
    if (entry === undefined) return undefined;
    const left = entry.expiresAt - this.now();
    if (left > 0) return [entry.count, left];
    this.#entries.delete(key);
    return undefined;
  }

  /** Drops expired counters from the LRU end until the first live one. */
  sweep(): void {
    const now = this.now();
    for (const [key, entry] of this.#entries) {
      if (entry.expiresAt > now) break;
      this.#entries.delete(key);
    }
  }

  #write(key: string, entry: { count: number; expiresAt: number }): void {
    this.#entries.delete(key);
    if (this.#entries.size >= this.maxKeys) {
      const oldest = this.#entries.keys().next();
      if (oldest.done !== true) this.#entries.delete(oldest.value);
    }
    this.#entries.set(key, entry);
  }

  close(): void {
    clearInterval(this.#sweeper);
    this.#entries.clear();
  }
}
