import { BlockList, isIP } from 'node:net';
import { ConfigError } from './errors.js';
import type { RedisConnectionPlan, RedisNodePlan } from '../plan/types.js';
import type { RedisTlsFiles } from './load.js';
import type { Config, MetricsSettings, TracingSettings } from './schema.js';

/*
 * Readings of a validated config that the plan builder (src/primary/plan) and the primary's
 * services share. Free of the schema's runtime (types only), so a worker that needs
 * `trustedProxyList` does not load zod.
 */

/**
 * The Redis URL in force: `redis.url` from the file wins, else env `REDIS_URL`, else none
 * (the embedded store). Read once, by the primary, into the plan's store choice.
 */
export function redisUrlOf(config: Config, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (config.redis?.url !== undefined) return config.redis.url;
  const fromEnv = env.REDIS_URL;
  if (fromEnv === undefined || fromEnv === '') return undefined;
  if (!/^(redis|rediss):\/\/.+/.test(fromEnv))
    throw new ConfigError([`REDIS_URL must be a redis:// or rediss:// URL, got "${fromEnv}"`]);
  return fromEnv;
}

/**
 * How to reach Redis, or `undefined` for none (the embedded store): `redis.sentinel`,
 * `redis.cluster`, else the URL in force (`redisUrlOf`). TLS when the URL is `rediss://`
 * or a `redis.tls` block is given (its files already read into `tls`).
 */
export function redisConnectionPlan(
  config: Config,
  env: NodeJS.ProcessEnv = process.env,
  tls?: RedisTlsFiles,
): RedisConnectionPlan | undefined {
  const redis = config.redis;
  const common = {
    ...(redis?.username === undefined ? {} : { username: redis.username }),
    ...(redis?.password === undefined ? {} : { password: redis.password }),
    ...(tls === undefined ? {} : { tls }),
  };
  if (redis?.sentinel !== undefined) {
    const { name, nodes, password } = redis.sentinel;
    return {
      mode: 'sentinel',
      url: '',
      sentinelName: name,
      nodes: nodes.map(parseRedisNode),
      ...(password === undefined || password === '' ? {} : { sentinelPassword: password }),
      ...common,
    };
  }
  if (redis?.cluster !== undefined)
    return {
      mode: 'cluster',
      url: '',
      sentinelName: '',
      nodes: redis.cluster.nodes.map(parseRedisNode),
      ...common,
    };
  const url = redisUrlOf(config, env);
  if (url === undefined) return undefined;
  const plan: RedisConnectionPlan = { mode: 'standalone', url, sentinelName: '', nodes: [], ...common };
  if (url.startsWith('rediss:') && plan.tls === undefined) plan.tls = {};
  return plan;
}

/** `host:port` or `[v6]:port`, as the schema let it through. */
export function parseRedisNode(node: string): RedisNodePlan {
  const at = node.lastIndexOf(':');
  const host = node.slice(0, at);
  return { host: host.startsWith('[') ? host.slice(1, -1) : host, port: Number(node.slice(at + 1)) };
}

/** Builds the `BlockList` of trusted proxies once, from already validated entries. */
export function trustedProxyList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [address, bits] = entry.split('/') as [string, string | undefined];
    const type = isIP(address) === 6 ? 'ipv6' : 'ipv4';
    if (bits === undefined) list.addAddress(address, type);
    else list.addSubnet(address, Number(bits), type);
  }
  return list;
}

/** Prometheus exposition settings, or `undefined` when metrics are off. */
export function metricsSettings(config: Config): MetricsSettings | undefined {
  return config.metrics?.prometheus.enabled ? config.metrics.prometheus : undefined;
}

/** Tracing settings, or `undefined` when tracing is off. */
export function tracingSettings(config: Config): TracingSettings | undefined {
  return config.otel?.enabled ? config.otel : undefined;
}
