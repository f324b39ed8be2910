import type { BucketPolicy, Decision } from '../../../shared/ratelimit/gcra.js';
import { MemoryBuckets, type MemoryBucketsOptions } from '../../../shared/ratelimit/memory-buckets.js';
import type { LimiterStore } from './store.js';

/** `MemoryBuckets` behind the async store interface (for the insurance path and tests). */
export class MemoryStore implements LimiterStore {
  readonly buckets: MemoryBuckets;
  constructor(options: MemoryBucketsOptions) {
    this.buckets = new MemoryBuckets(options);
  }
  take(key: string, policy: BucketPolicy): Promise<Decision> {
    return Promise.resolve(this.buckets.take(key, policy));
  }
  close(): Promise<void> {
    this.buckets.close();
    return Promise.resolve();
  }
}
