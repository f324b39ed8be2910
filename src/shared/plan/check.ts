import type { AuthPlan, LimiterPlan, Plan, RoutePlan, RouteRateLimitPlan, UpstreamPlan } from './types.js';

/*
 * The plan's shape, checked where it arrives (a worker, from the IPC channel): anything
 * that is not a plan is refused, never cast. The values were validated by the primary; this
 * guards against a message of another kind or version, not against a hostile primary.
 */

type Fields = Record<string, unknown>;

const isObject = (v: unknown): v is Fields => typeof v === 'object' && v !== null && !Array.isArray(v);
const isString = (v: unknown): v is string => typeof v === 'string';
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
const isBoolean = (v: unknown): v is boolean => typeof v === 'boolean';
const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every(isString);
const optional = (v: unknown, check: (v: unknown) => boolean) => v === undefined || check(v);

function isServer(v: unknown): boolean {
  return (
    isObject(v) &&
    isNumber(v.port) &&
    isString(v.host) &&
    (v.workers === 'auto' || isNumber(v.workers)) &&
    isStringArray(v.trusted_proxies) &&
    isNumber(v.drain_timeout) &&
    isNumber(v.max_header_size) &&
    isNumber(v.max_headers) &&
    isNumber(v.keep_alive_timeout) &&
    isNumber(v.request_timeout) &&
    isNumber(v.max_body_size)
  );
}

function isAuth(v: unknown): v is AuthPlan {
  return (
    isObject(v) &&
    isBoolean(v.enabled) &&
    isString(v.type) &&
    optional(v.secret, isString) &&
    optional(v.publicKeyPem, isString) &&
    isStringArray(v.algorithms) &&
    optional(v.jwksUri, isString) &&
    optional(v.issuer, isString) &&
    optional(v.audience, (a) => isString(a) || isStringArray(a)) &&
    isNumber(v.clockToleranceSec) &&
    isStringArray(v.requiredClaims) &&
    Array.isArray(v.forwardClaims) &&
    v.forwardClaims.every((pair) => isStringArray(pair) && pair.length === 2) &&
    isString(v.realm) &&
    isNumber(v.maxTokenLength) &&
    isObject(v.jwks) &&
    isNumber(v.jwks.timeoutMs) &&
    isNumber(v.jwks.cooldownMs) &&
    isNumber(v.jwks.cacheMaxAgeMs) &&
    isObject(v.cache) &&
    isNumber(v.cache.size) &&
    isNumber(v.cache.ttlMs) &&
    isObject(v.options) &&
    isString(v.fingerprint)
  );
}

function isRouteRateLimit(v: unknown): v is RouteRateLimitPlan {
  return (
    isObject(v) &&
    isBoolean(v.enabled) &&
    isNumber(v.requestsPerSecond) &&
    isNumber(v.burst) &&
    isString(v.key) &&
    (v.scope === 'route' || v.scope === 'default') &&
    isNumber(v.ipv6Prefix) &&
    isBoolean(v.legacyHeaders)
  );
}

function isLimiter(v: unknown): v is LimiterPlan {
  if (!isObject(v) || !isObject(v.store)) return false;
  const store = v.store;
  return (
    (store.kind === 'embedded' ||
      (store.kind === 'redis' && isString(store.url) && isString(store.keyPrefix))) &&
    isNumber(v.maxKeys) &&
    (v.onStoreError === 'allow' || v.onStoreError === 'deny') &&
    isNumber(v.storeTimeoutMs)
  );
}

function isTarget(v: unknown): boolean {
  return (
    isObject(v) &&
    isString(v.url) &&
    (v.discovery === 'address' || v.discovery === 'dns' || v.discovery === 'srv') &&
    (v.protocol === 'http:' || v.protocol === 'https:') &&
    isString(v.host) &&
    isNumber(v.port) &&
    isNumber(v.weight)
  );
}

function isHealthCheck(v: unknown): boolean {
  return (
    isObject(v) &&
    isString(v.path) &&
    isNumber(v.intervalMs) &&
    isNumber(v.timeoutMs) &&
    isNumber(v.healthyThreshold) &&
    isNumber(v.unhealthyThreshold) &&
    Array.isArray(v.expectStatus) &&
    v.expectStatus.every((r) => Array.isArray(r) && r.length === 2 && r.every(isNumber))
  );
}

function isTimeouts(v: unknown): boolean {
  return isObject(v) && isNumber(v.connectMs) && isNumber(v.responseMs) && isNumber(v.idleMs);
}

function isRetry(v: unknown): boolean {
  return (
    isObject(v) &&
    isNumber(v.attempts) &&
    Array.isArray(v.on) &&
    v.on.every((c) => isString(c) || isNumber(c)) &&
    isStringArray(v.methods) &&
    isObject(v.backoff) &&
    isNumber(v.backoff.baseMs) &&
    isNumber(v.backoff.maxMs) &&
    isNumber(v.budget) &&
    isNumber(v.bufferBytes)
  );
}

function isUpstream(v: unknown): v is UpstreamPlan {
  return (
    isObject(v) &&
    isString(v.name) &&
    isBoolean(v.implicit) &&
    Array.isArray(v.targets) &&
    v.targets.length > 0 &&
    v.targets.every(isTarget) &&
    isString(v.balance) &&
    (v.hashOn === null || (isObject(v.hashOn) && isString(v.hashOn.kind))) &&
    (v.healthCheck === null || isHealthCheck(v.healthCheck)) &&
    isObject(v.outlier) &&
    isNumber(v.outlier.consecutiveFailures) &&
    isNumber(v.outlier.baseEjectionMs) &&
    isNumber(v.outlier.maxEjectionMs) &&
    isNumber(v.outlier.maxEjectionPercent) &&
    isNumber(v.panicThreshold) &&
    isObject(v.discovery) &&
    (v.discovery.dnsRefresh === 'ttl' || isNumber(v.discovery.dnsRefresh)) &&
    isBoolean(v.discovery.srv) &&
    isStringArray(v.discovery.resolvers) &&
    isTimeouts(v.timeouts) &&
    isRetry(v.retry) &&
    isString(v.fingerprint)
  );
}

function isRoute(v: unknown): v is RoutePlan {
  return (
    isObject(v) &&
    isString(v.path) &&
    (v.methods === null || isStringArray(v.methods)) &&
    (v.target === null || isString(v.target)) &&
    isString(v.upstream) &&
    (v.timeoutMs === null || isNumber(v.timeoutMs)) &&
    isObject(v.upstreamPath) &&
    (v.upstreamPath.rewrite === null || isString(v.upstreamPath.rewrite)) &&
    isBoolean(v.upstreamPath.stripPrefix) &&
    isString(v.upstreamPath.basePath) &&
    isStringArray(v.middleware) &&
    (v.auth === null || isAuth(v.auth)) &&
    (v.rateLimit === null || isRouteRateLimit(v.rateLimit))
  );
}

const hasUpstream = (upstreams: UpstreamPlan[], route: RoutePlan) =>
  upstreams.some((upstream) => upstream.name === route.upstream);

export function isPlan(v: unknown): v is Plan {
  return (
    isObject(v) &&
    isString(v.hash) &&
    isString(v.source) &&
    isString(v.configDir) &&
    isServer(v.server) &&
    isObject(v.logging) &&
    isString(v.logging.format) &&
    isString(v.logging.level) &&
    (v.metrics === null ||
      (isObject(v.metrics) && isString(v.metrics.path) && isBoolean(v.metrics.enabled))) &&
    (v.tracing === null ||
      (isObject(v.tracing) && isString(v.tracing.endpoint) && isBoolean(v.tracing.enabled))) &&
    (v.limiter === null || isLimiter(v.limiter)) &&
    Array.isArray(v.upstreams) &&
    v.upstreams.every(isUpstream) &&
    Array.isArray(v.routes) &&
    v.routes.length > 0 &&
    v.routes.every((route) => isRoute(route) && hasUpstream(v.upstreams as UpstreamPlan[], route))
  );
}
