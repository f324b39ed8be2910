import type { BucketPolicy, Decision } from '../../../shared/ratelimit/gcra.js';

/**
 * Where buckets live: the worker's memory, the primary (embedded, shared by the workers of
 * one instance) or Redis (shared by every instance). The one method every backend needs;
 * the shared contract suite (test/ratelimit-store.test.ts) runs against each.
 */
export interface LimiterStore {
  /** Takes one token from `key`'s bucket. Rejects when the store cannot answer. */
  take(key: string, policy: BucketPolicy): Promise<Decision>;
  close(): Promise<void>;
}
