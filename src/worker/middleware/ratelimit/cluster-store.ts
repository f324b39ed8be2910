import { isResultBatch, type TakeBatch, type TakeTuple } from '../../../shared/ratelimit-messages.js';
import type { BucketPolicy, Decision } from '../../../shared/ratelimit/gcra.js';
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

/**
 * The worker side of the embedded store: buckets live in the primary, so every worker of
 * the instance shares one budget per key. Takes queued during one event-loop turn travel
 * as one message (the IPC cost is per message, not per take), and each batch is bounded by
 * the store timeout so a primary that stopped answering cannot hang requests.
 */
export class ClusterStore implements LimiterStore {
  readonly #pending = new Map<number, Pending>();
  #queue: TakeTuple[] = [];
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
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  #flush(): void {
    this.#scheduled = false;
    const takes = this.#queue;
    this.#queue = [];
    const batch: TakeBatch = { type: 'portico:ratelimit:take', takes };
    try {
      if (!this.port.send) throw new Error('no IPC channel to the primary');
      this.port.send(batch, (err) => {
        if (err) this.#fail(takes, err);
      });
    } catch (err) {
      this.#fail(takes, err as Error);
      return;
    }
    setTimeout(
      () => this.#fail(takes, new Error(`embedded store did not answer within ${this.timeoutMs} ms`)),
      this.timeoutMs,
    ).unref();
  }

  #fail(takes: TakeTuple[], err: Error): void {
    for (const [id] of takes) {
      const pending = this.#pending.get(id);
      if (pending === undefined) continue;
      this.#pending.delete(id);
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
  }

  close(): Promise<void> {
    this.port.off('message', this.#listener);
    this.#fail([...this.#queue], new Error('store closed'));
    return Promise.resolve();
  }
}
