import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { Config } from '../../../shared/config/schema.js';
import { redisUrlOf } from '../../../shared/config/settings.js';
import { GatewayError, writeError } from '../../../shared/errors.js';
import type { WorkerResources } from '../../resources.js';
import type { MiddlewareFactory } from '../types.js';
import { BlockedKeys } from './blocked-keys.js';
import { ClusterStore } from './cluster-store.js';
import { compilePolicy } from './gcra.js';
import { planHeaders, writeRateLimitHeaders } from './headers.js';
import { compileKey, parseKeySpec } from './key.js';
import { STORE_UNAVAILABLE, type Verdict, WorkerLimiter } from './limiter.js';
import { MemoryBuckets } from './memory-store.js';
import { rateLimitObservers } from './observer.js';
import type { LimiterStore } from './store.js';

export { observeRateLimit, type RateLimitObserver } from './observer.js';

const RATE_LIMITED = new GatewayError('PORTICO_ERR_RATE_LIMITED');
const UNAVAILABLE = new GatewayError('PORTICO_ERR_RATE_LIMIT_UNAVAILABLE');
/** While the store is down, one request per second probes it. */
const PROBE_INTERVAL_MS = 1_000;

/**
 * `ratelimit`: a token bucket per key (gcra.ts), kept in Redis when a URL is configured,
 * else in the primary (embedded store). Everything derivable from config is computed here,
 * once per route; the per-request work is key → take → headers → next or 429.
 */
export const rateLimitMiddleware: MiddlewareFactory = async ({ config, route, logger, resources }) => {
  const global = config.rate_limit;
  const own = route.rate_limit;
  if (!(own?.enabled ?? global.enabled)) return (next) => next;

  const policy = compilePolicy(
    own?.requests_per_second ?? global.requests_per_second,
    own?.burst ?? global.burst,
  );
  const spec = parseKeySpec(own?.key ?? global.key);
  // The route's identity in bucket keys: two entries may share a path with other methods.
  const routeId = `${route.path}${route.methods ? `:${route.methods.join(',')}` : ''}`;
  const keyOf = compileKey(spec, own ? `r:${routeId}` : 'g', routeId, global.ipv6_prefix);
  const plan = planHeaders(own ? 'route' : 'default', policy, global.legacy_headers);
  if (spec.kind === 'sub') {
    const chain = route.middleware;
    if (!chain.includes('auth') || chain.indexOf('auth') > chain.indexOf('ratelimit')) {
      logger.warn(
        { route: route.path },
        'ratelimit key "sub" without auth before it: requests without a subject are limited per client IP',
      );
    }
  }
  const limiter = await resources.shared('portico.ratelimit.limiter', () =>
    createWorkerLimiter(config, logger, resources),
  );
  const observers = rateLimitObservers(resources);
  const routePath = route.path;

  return (next) => {
    function decide(verdict: Verdict | typeof STORE_UNAVAILABLE, req: IncomingMessage, res: ServerResponse) {
      if (verdict === STORE_UNAVAILABLE) {
        for (const o of observers) o.decision?.(routePath, 'store_error', false);
        res.setHeader('retry-after', '1');
        writeError(res, UNAVAILABLE);
        return;
      }
      const retryAfter = writeRateLimitHeaders(res, plan, verdict);
      if (observers.length > 0) {
        const outcome = verdict.degraded ? 'store_error' : verdict.allowed ? 'allowed' : 'limited';
        for (const o of observers) o.decision?.(routePath, outcome, verdict.allowed);
      }
      if (verdict.allowed) return next(req, res);
      res.setHeader('retry-after', String(retryAfter));
      writeError(res, RATE_LIMITED);
      return;
    }
    return function ratelimit(req, res) {
      const verdict = limiter.take(keyOf(req), policy);
      if (verdict instanceof Promise) return verdict.then((v) => decide(v, req, res));
      return decide(verdict, req, res);
    };
  };
};

/** The worker's limiter, built once and shared by every route (see WorkerResources). */
async function createWorkerLimiter(
  config: Config,
  logger: Logger,
  resources: WorkerResources,
): Promise<WorkerLimiter> {
  const settings = config.rate_limit;
  const url = redisUrlOf(config);
  const insurance = new MemoryBuckets({ maxKeys: settings.max_keys });
  const options = {
    insurance,
    blocked: new BlockedKeys(settings.max_keys),
    onStoreError: settings.on_store_error,
    probeIntervalMs: PROBE_INTERVAL_MS,
    logger,
    observers: rateLimitObservers(resources),
  };
  let store: LimiterStore;
  let limiter: WorkerLimiter;
  if (url === undefined) {
    store = new ClusterStore(process, settings.store_timeout);
    limiter = new WorkerLimiter({ ...options, store, storeName: 'embedded' });
  } else {
    // Loaded only when used: ioredis costs ~0.1-0.2 s of start-up per worker, which every
    // gateway without Redis (and every respawn) would otherwise pay.
    const { createRedisClient, RedisStore } = await import('./redis-store.js');
    const { maskRedisUrl, watchRedisHealth } = await import('./redis-health.js');
    const client = createRedisClient({ url, commandTimeoutMs: settings.store_timeout });
    const redisStore = new RedisStore(client, config.redis?.key_prefix ?? 'portico:rl:');
    store = redisStore;
    limiter = new WorkerLimiter({ ...options, store, storeName: 'redis' });
    // ioredis reports every failed reconnect; the limiter logs the transitions that matter,
    // and a misconfiguration (password, database, TLS) is said in words, once.
    watchRedisHealth(
      client,
      url,
      logger,
      redisStore,
      (err) => limiter.storeFailed(err),
      () => limiter.probeSoon(),
    );
    // Give a healthy Redis the moment it needs to connect before the first request; a dead
    // one must not delay start-up by more than this.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(1_000, settings.store_timeout * 4));
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    logger.info(
      {
        store: 'redis',
        redis: maskRedisUrl(url),
        connected: client.status === 'ready' && !limiter.storeDown,
      },
      'rate-limit store: redis',
    );
  }
  resources.onClose('ratelimit store', async () => {
    await store.close();
    insurance.close();
  });
  return limiter;
}
