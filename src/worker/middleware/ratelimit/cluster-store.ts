import {
  type CountTuple,
  isResultBatch,
  type TakeBatch,
  type TakeTuple,
} from '../../../shared/ratelimit-messages.js';
import type { BucketPolicy, Decision } from '../../../shared/ratelimit/gcra.js';
import type { CounterState } from '../../../shared/ratelimit/window-counters.js';
import type { CounterStore } from './counter-store.js';
import type { LimiterStore } from './store.js';

/** The IPC endpoint: `process` in a worker, a `ChildProcess` or cluster `Worker` in a parent. */
export interface MessagePort {
  send?(message: unknown, callback: (error: Error | null) => void): unknown;
  on(event: 'message', listener: (message: unknown) => void): unknown;
  off(event: 'message', listener: (message: unknown) => void): unknown;
}

interface Pending {
  resolve(decision: Decision): void;
  reject(err: Error): void;
}

interface PendingCount {
  resolve(state: CounterState | undefined): void;
  reject(err: Error): void;
}

/**
 * The worker side of the embedded store: buckets live in the primary, so every worker of
 * the instance shares one budget per key. Takes queued during one event-loop turn travel
 * as one message (the IPC cost is per message, not per take), and each batch is bounded by
 * the store timeout so a primary that stopped answering cannot hang requests.
 */
export class ClusterStore implements LimiterStore, CounterStore {
  readonly #pending = new Map<number, Pending>();
  readonly #countPending = new Map<number, PendingCount>();
  #queue: TakeTuple[] = [];
  #counts: CountTuple[] = [];
  #nextId = 0;
  #scheduled = false;
  readonly #listener = (message: unknown) => this.#onMessage(message);

  constructor(
    private readonly port: MessagePort,
    private readonly timeoutMs: number,
  ) {
    port.on('message', this.#listener);
  }

  take(key: string, policy: BucketPolicy): Promise<Decision> {
    return new Promise<Decision>((resolve, reject) => {
      const id = ++this.#nextId;
      this.#pending.set(id, { resolve, reject });
      this.#queue.push([id, key, policy.intervalUs, policy.burst]);
      this.#schedule();
    });
  }

  add(key: string, delta: number, ttlSec: number): Promise<CounterState> {
    return this.#count(0, key, delta, ttlSec) as Promise<CounterState>;
  }

  get(key: string): Promise<CounterState | undefined> {
    return this.#count(1, key, 0, 1);
  }

  async set(key: string, count: number, ttlSec: number): Promise<void> {
    await this.#count(2, key, count, ttlSec);
  }

  #count(op: 0 | 1 | 2, key: string, value: number, ttlSec: number): Promise<CounterState | undefined> {
    return new Promise((resolve, reject) => {
      const id = ++this.#nextId;
      this.#countPending.set(id, { resolve, reject });
      this.#counts.push([id, op, key, value, ttlSec]);
      this.#schedule();
    });
  }

  #schedule(): void {
    if (!this.#scheduled) {
      this.#scheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#scheduled = false;
    const takes = this.#queue;
    const counts = this.#counts;
    this.#queue = [];
    this.#counts = [];
    const batch: TakeBatch = { type: 'portico:ratelimit:take', takes };
    if (counts.length > 0) batch.counts = counts;
    try {
      if (!this.port.send) throw new Error('no IPC channel to the primary');
      this.port.send(batch, (err) => {
        if (err) this.#fail(takes, counts, err);
      });
    } catch (err) {
      this.#fail(takes, counts, err as Error);
      return;
    }
    setTimeout(
      () => this.#fail(takes, counts, new Error(`embedded store did not answer within ${this.timeoutMs} ms`)),
      this.timeoutMs,
    ).unref();
  }

  #fail(takes: TakeTuple[], counts: CountTuple[], err: Error): void {
    for (const [id] of takes) {
      const pending = this.#pending.get(id);
      if (pending === undefined) continue;
      this.#pending.delete(id);
      pending.reject(err);
    }
    for (const [id] of counts) {
      const pending = this.#countPending.get(id);
      if (pending === undefined) continue;
      this.#countPending.delete(id);
      pending.reject(err);
    }
  }

  #onMessage(message: unknown): void {
    if (!isResultBatch(message)) return;
    for (const result of message.results) {
      if (!Array.isArray(result)) continue;
      const [id, allowed, fullInUs] = result;
      if (typeof fullInUs !== 'number') continue;
      const pending = this.#pending.get(id);
      if (pending === undefined) continue; // answered after its timeout: already decided
      this.#pending.delete(id);
      pending.resolve({ allowed: allowed === 1, fullInUs });
    }
    for (const result of Array.isArray(message.counts) ? message.counts : []) {
      if (!Array.isArray(result)) continue;
      const [id, count, msLeft] = result;
      const pending = this.#countPending.get(id);
      if (pending === undefined || typeof count !== 'number' || typeof msLeft !== 'number') continue;
      this.#countPending.delete(id);
      pending.resolve(msLeft > 0 ? [count, msLeft] : undefined);
    }
  }

  close(): Promise<void> {
    this.port.off('message', this.#listener);
    this.#fail([...this.#queue], [...this.#counts], new Error('store closed'));
    return Promise.resolve();
  }
}
