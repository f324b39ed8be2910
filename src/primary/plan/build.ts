import { createHash } from 'node:crypto';
import type { LoadedConfig } from '../../shared/config/load.js';
import type { Config, RouteConfig } from '../../shared/config/schema.js';
import { metricsSettings, redisUrlOf, tracingSettings } from '../../shared/config/settings.js';
import type { LimiterPlan, Plan, RoutePlan, RouteRateLimitPlan } from '../../shared/plan/types.js';

/**
 * Resolves a validated config into the plan the workers run: every route's slices merged
 * with the global sections, the rate-limit store chosen (a `REDIS_URL` read here, once),
 * auth taken as validation resolved it. Pure apart from reading the environment; the
 * result is hashed so two plans compare by one string.
 */
export function buildPlan(
  { config, auth }: LoadedConfig,
  source: string,
  configDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Plan {
  const routes = config.routes.map((route, index) => routePlan(config, route, auth[index] ?? null));
  const body: Omit<Plan, 'hash'> = {
    source,
    configDir,
    server: config.server,
    logging: config.logging,
    metrics: metricsSettings(config) ?? null,
    tracing: tracingSettings(config) ?? null,
    limiter: routes.some((route) => route.rateLimit !== null) ? limiterPlan(config, env) : null,
    routes,
  };
  return { hash: planHash(body), ...body };
}

function routePlan(config: Config, route: RouteConfig, auth: RoutePlan['auth']): RoutePlan {
  const target = new URL(route.target);
  return {
    path: route.path,
    methods: route.methods ?? null,
    target: route.target,
    timeoutMs: route.timeout,
    upstreamPath: {
      rewrite: route.rewrite ?? null,
      stripPrefix: route.strip_prefix,
      basePath: target.pathname,
    },
    middleware: route.middleware,
    auth: route.middleware.includes('auth') ? auth : null,
    rateLimit: route.middleware.includes('ratelimit') ? rateLimitPlan(config, route) : null,
  };
}

/** A route's own `rate_limit` keys replace the global ones, and give it its own buckets. */
function rateLimitPlan(config: Config, route: RouteConfig): RouteRateLimitPlan {
  const global = config.rate_limit;
  const own = route.rate_limit;
  return {
    enabled: own?.enabled ?? global.enabled,
    requestsPerSecond: own?.requests_per_second ?? global.requests_per_second,
    burst: own?.burst ?? global.burst,
    key: own?.key ?? global.key,
    scope: own ? 'route' : 'default',
    ipv6Prefix: global.ipv6_prefix,
    legacyHeaders: global.legacy_headers,
  };
}

function limiterPlan(config: Config, env: NodeJS.ProcessEnv): LimiterPlan {
  const url = redisUrlOf(config, env);
  return {
    store:
      url === undefined ? { kind: 'embedded' } : { kind: 'redis', url, keyPrefix: config.redis.key_prefix },
    maxKeys: config.rate_limit.max_keys,
    onStoreError: config.rate_limit.on_store_error,
    storeTimeoutMs: config.rate_limit.store_timeout,
  };
}

/** sha256 of the canonical JSON (keys sorted at every level), so key order never changes it. */
export function planHash(body: Omit<Plan, 'hash'>): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
