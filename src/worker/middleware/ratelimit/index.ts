import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { GatewayError, writeError } from '../../../shared/errors.js';
import type { LimiterPlan, RouteRateLimitPlan } from '../../../shared/plan/types.js';
import { ResourceKind, type ResourceScope } from '../../resources.js';
import type { ObservationHooks } from '../hooks.js';
import type { Middleware, MiddlewareEnv } from '../types.js';
import { BlockedKeys } from './blocked-keys.js';
import { ClusterStore } from './cluster-store.js';
import { compilePolicy } from '../../../shared/ratelimit/gcra.js';
import { planHeaders, writeRateLimitHeaders } from './headers.js';
import { compileKey, parseKeySpec } from './key.js';
import { STORE_UNAVAILABLE, type Verdict, WorkerLimiter } from './limiter.js';
import { MemoryBuckets } from '../../../shared/ratelimit/memory-buckets.js';
import type { LimiterStore } from './store.js';
import { WindowCounters } from '../../../shared/ratelimit/window-counters.js';
import { type CounterStore, MemoryCounterStore } from './counter-store.js';
import { quotaMiddleware } from './quotas.js';

const RATE_LIMITED = new GatewayError('PORTICO_ERR_RATE_LIMITED', { message: 'rate limit exceeded: burst' });
const UNAVAILABLE = new GatewayError('PORTICO_ERR_RATE_LIMIT_UNAVAILABLE');
/** While the store is down, one request per second probes it. */
const PROBE_INTERVAL_MS = 1_000;
/** One limiter per worker and store settings, shared by every route. */
const LIMITER = new ResourceKind<Promise<WorkerLimiter>>('ratelimit limiter');

/**
 * `ratelimit`: a token bucket per key (gcra.ts), kept in Redis when a URL is configured,
 * else in the primary (embedded store). Everything derivable from config is computed here,
 * once per route; the per-request work is key → take → headers → next or 429.
 */
export async function rateLimitMiddleware(
  settings: RouteRateLimitPlan,
  limiterPlan: LimiterPlan,
  { route, logger, resources, hooks }: MiddlewareEnv,
): Promise<Middleware> {
  if (!settings.enabled) return (next) => next;

  const policy = compilePolicy(settings.requestsPerSecond, settings.burst);
  const spec = parseKeySpec(settings.key);
  const own = settings.scope === 'route';
  // The route's identity in bucket keys: two entries may share a path with other methods.
  const routeId = `${route.path}${route.methods ? `:${route.methods.join(',')}` : ''}`;
  const keyOf = compileKey(spec, own ? `r:${routeId}` : 'g', routeId, settings.ipv6Prefix);
  const plan = planHeaders('burst', policy, settings.legacyHeaders);
  if (spec.kind === 'sub') {
    const chain = route.middleware;
    if (!chain.includes('auth') || chain.indexOf('auth') > chain.indexOf('ratelimit')) {
      logger.warn(
        { route: route.path },
        'ratelimit key "sub" without auth before it: requests without a subject are limited per client IP',
      );
    }
  }
  const limiter = await resources.shared(LIMITER, JSON.stringify(limiterPlan), (own) =>
    createWorkerLimiter(limiterPlan, logger, own, hooks),
  );
  // Issue 16: quotas or a ban take their own path; without them the path below is unchanged.
  if (settings.quotas.length > 0 || settings.ban !== null) {
    return quotaMiddleware({ settings, policy, plan, keyOf, limiter, hooks });
  }

  // Resolved once: the request path only calls them.
  const allowed = hooks.rateLimitCounter('allowed', 'all');
  const limited = hooks.rateLimitCounter('limited', 'burst');
  const storeError = hooks.rateLimitCounter('store_error', 'all');

  return (next) => {
    function decide(verdict: Verdict | typeof STORE_UNAVAILABLE, req: IncomingMessage, res: ServerResponse) {
      if (verdict === STORE_UNAVAILABLE) {
        storeError();
        res.setHeader('retry-after', '1');
        writeError(res, UNAVAILABLE);
        return;
      }
      const retryAfter = writeRateLimitHeaders(res, plan, verdict);
      (verdict.degraded ? storeError : verdict.allowed ? allowed : limited)();
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
}

/** The worker's limiter, built once and shared by every route (see WorkerResources). */
async function createWorkerLimiter(
  settings: LimiterPlan,
  logger: Logger,
  own: ResourceScope,
  hooks: ObservationHooks,
): Promise<WorkerLimiter> {
  const insurance = new MemoryBuckets({ maxKeys: settings.maxKeys });
  const insuranceCounters = settings.counters ? new WindowCounters(settings.maxKeys) : undefined;
  const counters = (shared: CounterStore) =>
    insuranceCounters && { shared, insurance: new MemoryCounterStore(insuranceCounters) };
  const options = {
    insurance,
    blocked: new BlockedKeys(settings.maxKeys),
    onStoreError: settings.onStoreError,
    probeIntervalMs: PROBE_INTERVAL_MS,
    logger,
    hooks,
  };
  let store: LimiterStore;
  let limiter: WorkerLimiter;
  if (settings.store.kind === 'embedded') {
    const clusterStore = new ClusterStore(process, settings.storeTimeoutMs);
    store = clusterStore;
    limiter = new WorkerLimiter({
      ...options,
      store,
      storeName: 'embedded',
      counters: counters(clusterStore),
    });
  } else {
    const { redis, keyPrefix } = settings.store;
    // Loaded only when used: ioredis costs ~0.1-0.2 s of start-up per worker, which every
    // gateway without Redis (and every respawn) would otherwise pay.
    const { RedisStore } = await import('./redis-store.js');
    const { createRedisConnection, describeRedis } = await import('./redis-connection.js');
    const { defineTakeCommand } = await import('./lua.js');
    const { watchRedisHealth } = await import('./redis-health.js');
    const client = defineTakeCommand(
      createRedisConnection(redis, { commandTimeoutMs: settings.storeTimeoutMs }),
    );
    const where = describeRedis(redis);
    const redisStore = new RedisStore(client, keyPrefix, (up) => hooks.redisUp('master', up));
    store = redisStore;
    // Quota and ban counters: rate-limiter-flexible on the same connection (single-key commands).
    const redisCounters = settings.counters
      ? new (await import('./redis-counters.js')).RedisCounters(client, `${keyPrefix}quota`)
      : undefined;
    limiter = new WorkerLimiter({
      ...options,
      store,
      storeName: 'redis',
      counters: redisCounters && counters(redisCounters),
    });
    // ioredis reports every failed reconnect; the limiter logs the transitions that matter,
    // and a misconfiguration (password, database, TLS) is said in words, once.
    watchRedisHealth(
      client,
      redis,
      where,
      logger,
      redisStore,
      hooks,
      (err) => limiter.storeFailed(err),
      () => limiter.probeSoon(),
    );
    // Give a healthy Redis the moment it needs to connect before the first request; a dead
    // one must not delay start-up by more than this.
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, Math.max(1_000, settings.storeTimeoutMs * 4));
      client.once('ready', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    logger.info(
      {
        store: 'redis',
        redis: where,
        mode: redis.mode,
        connected: client.status === 'ready' && !limiter.storeDown,
      },
      'rate-limit store: redis',
    );
  }
  own.onClose('ratelimit store', async () => {
    await store.close();
    insurance.close();
    insuranceCounters?.close();
  });
  return limiter;
}
