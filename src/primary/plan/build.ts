import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import type { LoadedConfig } from '../../shared/config/load.js';
import type { Config, RouteConfig } from '../../shared/config/schema.js';
import { metricsSettings, redisUrlOf, tracingSettings } from '../../shared/config/settings.js';
import { type UpstreamConfig, upstreamSchema } from '../../shared/config/upstream-schema.js';
import type {
  LimiterPlan,
  Plan,
  RoutePlan,
  RouteRateLimitPlan,
  TargetPlan,
  UpstreamPlan,
} from '../../shared/plan/types.js';

/**
 * Resolves a validated config into the plan the workers run: every route's slices merged
 * with the global sections, the rate-limit store chosen (a `REDIS_URL` read here, once),
 * auth taken as validation resolved it. Pure apart from reading the environment; the
 * result is hashed so two plans compare by one string.
 */
export function buildPlan(
  { config, auth, serverTls }: LoadedConfig,
  source: string,
  configDir: string,
  env: NodeJS.ProcessEnv = process.env,
): Plan {
  const upstreams = upstreamPlans(config);
  const routes = config.routes.map((route, index) => routePlan(config, route, auth[index] ?? null));
  const body: Omit<Plan, 'hash'> = {
    source,
    configDir,
    server: config.server,
    logging: config.logging,
    metrics: metricsSettings(config) ?? null,
    tracing: tracingSettings(config) ?? null,
    limiter: routes.some((route) => route.rateLimit !== null) ? limiterPlan(config, env) : null,
    upstreams,
    routes,
    serverTls: serverTls ?? null,
  };
  return { hash: planHash(body), ...body };
}

function routePlan(config: Config, route: RouteConfig, auth: RoutePlan['auth']): RoutePlan {
  const target = route.target === undefined ? null : new URL(route.target);
  return {
    path: route.path,
    methods: route.methods ?? null,
    target: route.target ?? null,
    upstream: target === null ? (route.upstream as string) : target.origin,
    timeoutMs: route.timeout ?? null,
    upstreamPath: {
      rewrite: route.rewrite ?? null,
      stripPrefix: route.strip_prefix,
      // A pool's targets have no path (see upstream-schema.ts); a target's path is prepended.
      basePath: target === null ? '/' : target.pathname,
    },
    middleware: route.middleware,
    auth: route.middleware.includes('auth') ? auth : null,
    rateLimit: route.middleware.includes('ratelimit') ? rateLimitPlan(config, route) : null,
  };
}

/**
 * The configured pools, then one per distinct `target:` origin (routes sharing an origin
 * share its pool, as they shared its keep-alive agent before pools existed). Implicit pools
 * get the schema's defaults, so a plain `target:` behaves like a pool of one.
 */
function upstreamPlans(config: Config): UpstreamPlan[] {
  const plans = Object.entries(config.upstreams).map(([name, upstream]) =>
    upstreamPlan(name, false, upstream),
  );
  const implicit = new Set<string>();
  for (const route of config.routes) {
    if (route.target === undefined) continue;
    const origin = new URL(route.target).origin;
    if (implicit.has(origin)) continue;
    implicit.add(origin);
    plans.push(upstreamPlan(origin, true, upstreamSchema.parse({ targets: [{ url: origin }] })));
  }
  return plans;
}

export function upstreamPlan(name: string, implicit: boolean, upstream: UpstreamConfig): UpstreamPlan {
  const hashOn = upstream.hash_on ?? 'ip';
  const check = upstream.health_check;
  const outlier = upstream.outlier_detection;
  const body: Omit<UpstreamPlan, 'fingerprint'> = {
    name,
    implicit,
    targets: upstream.targets.map(({ url, weight }) => targetPlan(url, weight)),
    balance: upstream.balance,
    hashOn:
      upstream.balance !== 'hash'
        ? null
        : hashOn === 'ip'
          ? { kind: 'ip' }
          : hashOn.startsWith('header:')
            ? { kind: 'header', name: hashOn.slice(7).toLowerCase() }
            : { kind: 'cookie', name: hashOn.slice(7) },
    healthCheck: check
      ? {
          path: check.path,
          intervalMs: check.interval,
          timeoutMs: check.timeout,
          healthyThreshold: check.healthy_threshold,
          unhealthyThreshold: check.unhealthy_threshold,
          expectStatus: check.expect_status.split(',').map((part) => {
            const [low, high = low] = part.split('-').map((n) => Number(n.trim())) as [number, number?];
            return [low, high];
          }),
        }
      : null,
    outlier: {
      consecutiveFailures: outlier.consecutive_failures,
      baseEjectionMs: outlier.base_ejection_time,
      maxEjectionMs: outlier.max_ejection_time,
      maxEjectionPercent: outlier.max_ejection_percent,
    },
    panicThreshold: upstream.panic_threshold / 100,
    discovery: {
      dnsRefresh: upstream.discovery.dns_refresh,
      srv: upstream.discovery.srv,
      resolvers: upstream.discovery.resolvers,
    },
    timeouts: {
      connectMs: upstream.timeouts.connect,
      responseMs: upstream.timeouts.response,
      idleMs: upstream.timeouts.idle,
    },
    retry: {
      attempts: upstream.retry.attempts,
      on: upstream.retry.on,
      methods: upstream.retry.methods,
      backoff: { baseMs: upstream.retry.backoff.base, maxMs: upstream.retry.backoff.max },
      budget: upstream.retry.budget / 100,
      bufferBytes: upstream.retry.buffer,
    },
    breaker: {
      maxRequests: upstream.circuit_breaker.max_requests,
      maxPending: upstream.circuit_breaker.max_pending,
      errorRatio: upstream.circuit_breaker.error_ratio,
      minRequests: upstream.circuit_breaker.min_requests,
      windowMs: upstream.circuit_breaker.window,
      openForMs: upstream.circuit_breaker.open_for,
      halfOpenRequests: upstream.circuit_breaker.half_open_requests,
    },
  };
  return { ...body, fingerprint: planHash(body) };
}

function targetPlan(url: string, weight: number): TargetPlan {
  if (url.startsWith('srv://')) {
    return { url, discovery: 'srv', protocol: 'http:', host: url.slice('srv://'.length), port: 0, weight };
  }
  const parsed = new URL(url);
  const secure = parsed.protocol === 'https:';
  // URL keeps IPv6 literals in brackets; sockets want the bare address.
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  return {
    url,
    discovery: isIP(host) === 0 ? 'dns' : 'address',
    protocol: secure ? 'https:' : 'http:',
    host,
    port: Number(parsed.port || (secure ? 443 : 80)),
    weight,
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
export function planHash(body: object): string {
  return createHash('sha256').update(canonicalJson(body)).digest('hex');
}

function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)))
      : v,
  );
}
