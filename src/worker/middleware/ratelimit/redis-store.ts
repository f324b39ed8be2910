import { Redis } from 'ioredis';
import type { BucketPolicy, Decision } from './gcra.js';
import { defineTakeCommand, type TakeCommand } from './lua.js';
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

/** Buckets in Redis under `prefix`, shared by every worker of every instance. */
export class RedisStore implements LimiterStore {
  constructor(
    readonly client: Redis & TakeCommand,
    private readonly prefix: string,
  ) {}

  async take(key: string, policy: BucketPolicy): Promise<Decision> {
    const [allowed, fullInUs] = await this.client.porticoTake(
      this.prefix + key,
      policy.intervalUs,
      policy.burst,
    );
    return { allowed: allowed === 1, fullInUs };
  }

  close(): Promise<void> {
    // Not QUIT: a stalled Redis would hold the drain until the close hook times out.
    this.client.disconnect();
    return Promise.resolve();
  }
}
