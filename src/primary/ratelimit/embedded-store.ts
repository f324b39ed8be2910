import cluster, { type Worker } from 'node:cluster';
import {
  type CountResultTuple,
  isCountTuple,
  isTakeBatch,
  isTakeTuple,
  type ResultBatch,
  type ResultTuple,
} from '../../shared/ratelimit-messages.js';
import { MemoryBuckets } from '../../shared/ratelimit/memory-buckets.js';
import { WindowCounters } from '../../shared/ratelimit/window-counters.js';
import type { PrimaryService } from '../services.js';

const ignore = (): void => {};

/**
 * The embedded store: without Redis, the primary keeps the buckets so all workers of the
 * instance share one budget per key (what `npm start` on a bare machine gets). Started only
 * when the plan's limiter chooses it (a route uses `ratelimit` and no Redis URL is in
 * force); the workers read the same choice from the same plan.
 */
export const embeddedRateLimitStore: PrimaryService = {
  name: 'ratelimit-embedded-store',
  start({ plan, logger }) {
    const limiter = plan.limiter;
    if (limiter === null || limiter.store.kind !== 'embedded') return Promise.resolve(undefined);
    const buckets = new MemoryBuckets({ maxKeys: limiter.maxKeys });
    const counters = new WindowCounters(limiter.maxKeys);
    const onMessage = (worker: Worker, message: unknown) => {
      const results = answerTakeBatch(buckets, message);
      if (results === undefined || !worker.isConnected()) return;
      const counts = answerCounts(counters, message);
      const reply: ResultBatch = { type: 'portico:ratelimit:result', results, ...(counts && { counts }) };
      worker.send(reply, ignore); // a worker that just died is not the primary's problem
    };
    cluster.on('message', onMessage);
    logger.info({ max_keys: limiter.maxKeys }, 'rate-limit store: embedded (shared by this instance)');
    return Promise.resolve({
      close() {
        cluster.off('message', onMessage);
        buckets.close();
        counters.close();
        return Promise.resolve();
      },
    });
  },
};

/**
 * The primary side: answers one worker's batch from `buckets`. Malformed takes are skipped
 * (their requests time out on the worker and fall back), never trusted.
 */
export function answerTakeBatch(buckets: MemoryBuckets, message: unknown): ResultTuple[] | undefined {
  if (!isTakeBatch(message)) return undefined;
  const results: ResultTuple[] = [];
  for (const take of message.takes) {
    if (!isTakeTuple(take)) continue;
    const decision = buckets.take(take[1], { intervalUs: take[2], burst: take[3] });
    results.push([take[0], decision.allowed ? 1 : 0, decision.fullInUs]);
  }
  return results;
}

/** Quota and ban counters of one batch (issue 16); `undefined` when it carries none. */
export function answerCounts(counters: WindowCounters, message: unknown): CountResultTuple[] | undefined {
  const counts = (message as { counts?: unknown }).counts;
  if (!Array.isArray(counts)) return undefined;
  const results: CountResultTuple[] = [];
  for (const count of counts) {
    if (!isCountTuple(count)) continue;
    const [id, op, key, value, ttlSec] = count;
    if (op === 0) {
      const [n, msLeft] = counters.add(key, value, ttlSec * 1000);
      results.push([id, n, msLeft]);
    } else if (op === 1) {
      const state = counters.get(key);
      results.push(state === undefined ? [id, 0, 0] : [id, state[0], state[1]]);
    } else {
      counters.set(key, value, ttlSec * 1000);
      results.push([id, value, ttlSec * 1000]);
    }
  }
  return results;
}
