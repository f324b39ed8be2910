import { Cluster, Redis, type RedisOptions } from 'ioredis';
import type { ConnectionOptions } from 'node:tls';
import type { RedisConnectionPlan } from '../../../shared/plan/types.js';
import { maskRedisUrl } from './redis-health.js';

/** A connection to Redis in any deployment: one client (standalone, Sentinel) or a Cluster. */
export type RedisConnection = Redis | Cluster;

export interface RedisConnectionOptions {
  /** Upper bound on one command; past it the caller falls back (rate_limit.store_timeout). */
  commandTimeoutMs: number;
}

/**
 * The one place a worker connects to Redis, from the plan's `redis` settings: a `Redis`
 * for a URL (`redis://`, `rediss://`) or Sentinel (the master is asked of the sentinels and
 * followed across failovers), a `Cluster` for Redis Cluster (MOVED/ASK and topology changes
 * followed). Every kind is tuned to fail fast: a dead or stalled Redis must cost a request at
 * most the command timeout, never a hang. No offline queue (commands while disconnected fail
 * at once), no per-request retries (a retried script could take a token twice), reconnect
 * with capped exponential backoff, and auto-pipelining so concurrent requests share writes.
 *
 * @example
 * const client = createRedisConnection(plan.limiter.store.redis, { commandTimeoutMs: 50 });
 * if (client instanceof Cluster) … // else a Redis
 */
export function createRedisConnection(
  plan: RedisConnectionPlan,
  options: RedisConnectionOptions,
): RedisConnection {
  const tls = tlsOptions(plan);
  const common: RedisOptions = {
    enableAutoPipelining: true,
    commandTimeout: options.commandTimeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: Math.max(1_000, options.commandTimeoutMs * 4),
    retryStrategy: reconnectDelay,
    lazyConnect: false,
    ...(plan.username === undefined ? {} : { username: plan.username }),
    ...(plan.password === undefined ? {} : { password: plan.password }),
    ...(tls === undefined ? {} : { tls }),
  };
  switch (plan.mode) {
    case 'standalone':
      // The URL's own credentials and database stay; configured ones win over them.
      return new Redis(withCredentials(plan), common);
    case 'sentinel':
      return new Redis({
        ...common,
        sentinels: plan.nodes,
        name: plan.sentinelName,
        role: 'master',
        ...(plan.sentinelPassword === undefined ? {} : { sentinelPassword: plan.sentinelPassword }),
        ...(tls === undefined ? {} : { enableTLSForSentinelMode: true, sentinelTLS: tls }),
        sentinelRetryStrategy: reconnectDelay,
        // A sentinel that does not answer must not hold up asking the next one.
        sentinelCommandTimeout: Math.max(500, options.commandTimeoutMs * 4),
        sentinelMaxConnections: plan.nodes.length,
      });
    case 'cluster': {
      // Cluster nodes do not reconnect on their own (the cluster refreshes its slot table
      // instead), and the cluster, not each node, has the offline queue.
      const redisOptions: RedisOptions = { ...common };
      delete redisOptions.retryStrategy;
      delete redisOptions.enableOfflineQueue;
      return new Cluster(plan.nodes, {
        redisOptions,
        enableOfflineQueue: false,
        enableAutoPipelining: true,
        scaleReads: 'master',
        clusterRetryStrategy: reconnectDelay,
        // A redirected script ran nowhere yet: following MOVED/ASK cannot take a token twice.
        maxRedirections: 16,
        // Not waiting out a failover per command: the store's breaker and `on_store_error`
        // cover the switch, and a refreshed slot table resumes shared limiting.
        retryDelayOnFailover: 0,
        retryDelayOnClusterDown: 0,
        retryDelayOnTryAgain: 0,
        slotsRefreshTimeout: Math.max(1_000, options.commandTimeoutMs * 4),
        slotsRefreshInterval: 2_000,
      });
    }
  }
}

/** Where the connection goes, for log lines: no credentials. */
export function describeRedis(plan: RedisConnectionPlan): string {
  const nodes = plan.nodes.map((n) =>
    n.host.includes(':') ? `[${n.host}]:${n.port}` : `${n.host}:${n.port}`,
  );
  switch (plan.mode) {
    case 'standalone':
      return maskRedisUrl(plan.url);
    case 'sentinel':
      return `sentinel ${plan.sentinelName} via ${nodes.join(',')}`;
    case 'cluster':
      return `cluster via ${nodes.join(',')}`;
  }
}

const reconnectDelay = (times: number): number => Math.min(50 * 2 ** Math.min(times, 6), 2_000);

function tlsOptions(plan: RedisConnectionPlan): ConnectionOptions | undefined {
  if (plan.tls === undefined) return undefined;
  const { ca, cert, key } = plan.tls;
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    rejectUnauthorized: true,
  };
}

function withCredentials(plan: RedisConnectionPlan): string {
  if (plan.username === undefined && plan.password === undefined) return plan.url;
  const url = new URL(plan.url);
  if (plan.username !== undefined) url.username = encodeURIComponent(plan.username);
  if (plan.password !== undefined) url.password = encodeURIComponent(plan.password);
  return url.toString();
}
