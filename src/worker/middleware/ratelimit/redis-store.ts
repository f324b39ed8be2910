import { Redis } from 'ioredis';
import type { BucketPolicy, Decision } from '../../../shared/ratelimit/gcra.js';
import { defineTakeCommand, type TakeCommand } from './lua.js';
import type { RedisHealthTarget } from './redis-health.js';
import type { LimiterStore } from './store.js';

export interface RedisClientOptions {
  url: string;
  /** Upper bound on one command; past it the caller falls back (rate_limit.store_timeout). */
  commandTimeoutMs: number;
}

/**
 * A client tuned to fail fast: a dead or stalled Redis must cost a request at most the
 * command timeout, never a hang. No offline queue (commands while disconnected fail at
 * once), no per-request retries (a retried EVALSHA could take a token twice), reconnect
 * with capped exponential backoff, and auto-pipelining so concurrent requests share
 * round trips.
 */
export function createRedisClient(options: RedisClientOptions): Redis & TakeCommand {
  const client = new Redis(options.url, {
    enableAutoPipelining: true,
    commandTimeout: options.commandTimeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: Math.max(1_000, options.commandTimeoutMs * 4),
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times, 6), 2_000),
    lazyConnect: false,
  });
  return defineTakeCommand(client);
}

/** Takes one script call may carry; a larger burst is split (auto-pipelining still joins them). */
const MAX_BATCH = 128;

interface PendingTake {
  key: string;
  policy: BucketPolicy;
  resolve(decision: Decision): void;
  reject(err: Error): void;
}

/**
 * Buckets in Redis under `prefix`, shared by every worker of every instance. The takes of
 * one event-loop turn (every request whose bytes arrived in the same poll) travel as one
 * script call: one command to encode, one reply to parse and one socket write for all of
 * them, instead of one each. The batch is flushed in `setImmediate`, still in the same
 * loop iteration, so no request waits for another turn.
 */
export class RedisStore implements LimiterStore, RedisHealthTarget {
  #queue: PendingTake[] = [];
  #scheduled = false;
  /** Set while the connection is misconfigured (see redis-health.ts): no take may succeed. */
  #refusal: Error | undefined;
  readonly #flush = () => this.#flushQueue();

  constructor(
    readonly client: Redis & TakeCommand,
    private readonly prefix: string,
  ) {}

  refuse(err: Error): void {
    this.#refusal = err;
  }

  accept(): void {
    this.#refusal = undefined;
  }

  take(key: string, policy: BucketPolicy): Promise<Decision> {
    // A wrong database still answers (on database 0): refuse rather than share the wrong buckets.
    if (this.#refusal !== undefined) return Promise.reject(this.#refusal);
    return new Promise<Decision>((resolve, reject) => {
      this.#queue.push({ key, policy, resolve, reject });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(this.#flush);
      }
    });
  }

  #flushQueue(): void {
    this.#scheduled = false;
    const queue = this.#queue;
    this.#queue = [];
    for (let start = 0; start < queue.length; start += MAX_BATCH) {
      this.#send(queue.slice(start, start + MAX_BATCH));
    }
  }

  #send(batch: PendingTake[]): void {
    const args: (string | number)[] = new Array<string | number>(batch.length * 3);
    const n = batch.length;
    for (let i = 0; i < n; i++) {
      const take = batch[i] as PendingTake;
      args[i] = this.prefix + take.key;
      args[n + 2 * i] = take.policy.intervalUs;
      args[n + 2 * i + 1] = take.policy.burst;
    }
    this.client.porticoTake(n, ...args).then(
      (reply) => {
        for (let i = 0; i < n; i++) {
          const allowed = reply[2 * i];
          const fullInUs = reply[2 * i + 1];
          const take = batch[i] as PendingTake;
          if (typeof fullInUs === 'number') take.resolve({ allowed: allowed === 1, fullInUs });
          else take.reject(new Error('malformed reply from the rate-limit script'));
        }
      },
      (err: unknown) => {
        const error = err instanceof Error ? err : new Error(String(err));
        for (const take of batch) take.reject(error);
      },
    );
  }

  close(): Promise<void> {
    // Not QUIT: a stalled Redis would hold the drain until the close hook times out.
    this.client.disconnect();
    return Promise.resolve();
  }
}
