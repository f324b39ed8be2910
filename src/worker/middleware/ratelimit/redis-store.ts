import { Cluster } from 'ioredis';
import type { BucketPolicy, Decision } from '../../../shared/ratelimit/gcra.js';
import { defineTakeCommand, type TakeCommand } from './lua.js';
import { createRedisConnection, type RedisConnection } from './redis-connection.js';
import type { RedisHealthTarget } from './redis-health.js';
import type { LimiterStore } from './store.js';

export interface RedisClientOptions {
  url: string;
  /** Upper bound on one command; past it the caller falls back (rate_limit.store_timeout). */
  commandTimeoutMs: number;
}

/** A standalone client for a URL (see `createRedisConnection` for every deployment). */
export function createRedisClient(options: RedisClientOptions): RedisConnection & TakeCommand {
  const client = createRedisConnection(
    { mode: 'standalone', url: options.url, sentinelName: '', nodes: [] },
    { commandTimeoutMs: options.commandTimeoutMs },
  );
  return defineTakeCommand(client);
}

/**
 * The key a bucket has in Redis: the whole limiter key is the hash tag, so in a Cluster every
 * key of one client (its bucket, and any other key derived from the same limiter key) lives
 * in one slot and one script call may touch them together. `prefix` holds no braces (the
 * schema refuses them), so the first `{` is this one.
 */
export const redisKey = (prefix: string, key: string): string => `${prefix}{${key}}`;

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
 * loop iteration, so no request waits for another turn. In a Cluster one script may only
 * touch one slot, so the batch is split by hash tag (one call per key, the takes of a hot
 * key still sharing it); auto-pipelining then joins the calls bound for one node into one
 * write, so a turn costs one round trip per node, and a request never more than one call.
 */
export class RedisStore implements LimiterStore, RedisHealthTarget {
  #queue: PendingTake[] = [];
  #scheduled = false;
  /** Set while the connection is misconfigured (see redis-health.ts): no take may succeed. */
  #refusal: Error | undefined;
  readonly #flush = () => this.#flushQueue();

  readonly #cluster: boolean;
  /** Whether the last script call was answered (told to `onMasterUp` on changes only). */
  #answered: boolean | undefined;

  constructor(
    readonly client: RedisConnection & TakeCommand,
    private readonly prefix: string,
    private readonly onMasterUp: (up: boolean) => void = () => {},
  ) {
    this.#cluster = client instanceof Cluster;
  }

  #answer(up: boolean): void {
    if (this.#answered === up) return;
    this.#answered = up;
    this.onMasterUp(up);
  }

  refuse(err: Error): void {
    this.#refusal = err;
    this.#answer(false);
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
    if (this.#cluster) {
      this.#sendBySlot(queue);
      return;
    }
    for (let start = 0; start < queue.length; start += MAX_BATCH) {
      this.#send(queue.slice(start, start + MAX_BATCH));
    }
  }

  #sendBySlot(queue: PendingTake[]): void {
    if (queue.length === 1) {
      this.#sendKey(queue);
      return;
    }
    const byKey = new Map<string, PendingTake[]>();
    for (const take of queue) {
      const group = byKey.get(take.key);
      if (group === undefined) byKey.set(take.key, [take]);
      else group.push(take);
    }
    for (const group of byKey.values()) {
      for (let start = 0; start < group.length; start += MAX_BATCH)
        this.#sendKey(group.slice(start, start + MAX_BATCH));
    }
  }

  /** Takes of one key (one slot): the key first, so the Cluster routes the call by it. */
  #sendKey(batch: PendingTake[]): void {
    const n = batch.length;
    const args = new Array<number>(2 * n);
    for (let i = 0; i < n; i++) {
      const take = batch[i] as PendingTake;
      args[2 * i] = take.policy.intervalUs;
      args[2 * i + 1] = take.policy.burst;
    }
    this.#settle(
      batch,
      this.client.porticoTakeKey(redisKey(this.prefix, (batch[0] as PendingTake).key), ...args),
    );
  }

  #send(batch: PendingTake[]): void {
    const args: (string | number)[] = new Array<string | number>(batch.length * 3);
    const n = batch.length;
    for (let i = 0; i < n; i++) {
      const take = batch[i] as PendingTake;
      args[i] = redisKey(this.prefix, take.key);
      args[n + 2 * i] = take.policy.intervalUs;
      args[n + 2 * i + 1] = take.policy.burst;
    }
    this.#settle(batch, this.client.porticoTake(n, ...args));
  }

  #settle(batch: PendingTake[], reply: Promise<number[]>): void {
    const n = batch.length;
    reply.then(
      (reply) => {
        this.#answer(true);
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
        // A script error (a reply) still means the master answered; a refusal (misconfigured) never reached it.
        if (!/^(ERR|NOSCRIPT|WRONGTYPE)\b/.test(error.message)) this.#answer(false);
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
