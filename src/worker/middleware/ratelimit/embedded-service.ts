import cluster, { type Worker } from 'node:cluster';
import type { PrimaryService } from '../../../primary/services.js';
import { redisUrlOf } from '../../../shared/config/settings.js';
import type { ResultBatch } from '../../../shared/ratelimit-messages.js';
import { answerTakeBatch } from './cluster-store.js';
import { MemoryBuckets } from './memory-store.js';

const ignore = (): void => {};

/**
 * The embedded store: without Redis, the primary keeps the buckets so all workers of the
 * instance share one budget per key (what `npm start` on a bare machine gets). Started only
 * when a route uses `ratelimit` and no Redis URL is in force, the same test the workers
 * make when they pick their store.
 */
export const embeddedRateLimitStore: PrimaryService = {
  name: 'ratelimit-embedded-store',
  start({ config, logger }) {
    if (redisUrlOf(config) !== undefined) return Promise.resolve(undefined);
    if (!config.routes.some((route) => route.middleware.includes('ratelimit')))
      return Promise.resolve(undefined);
    const buckets = new MemoryBuckets({ maxKeys: config.rate_limit.max_keys });
    const onMessage = (worker: Worker, message: unknown) => {
      const results = answerTakeBatch(buckets, message);
      if (results === undefined || !worker.isConnected()) return;
      const reply: ResultBatch = { type: 'portico:ratelimit:result', results };
      worker.send(reply, ignore); // a worker that just died is not the primary's problem
    };
    cluster.on('message', onMessage);
    logger.info(
      { max_keys: config.rate_limit.max_keys },
      'rate-limit store: embedded (shared by this instance)',
    );
    return Promise.resolve({
      close() {
        cluster.off('message', onMessage);
        buckets.close();
        return Promise.resolve();
      },
    });
  },
};
