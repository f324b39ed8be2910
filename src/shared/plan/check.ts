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
type Check = (v: unknown) => boolean;
const optional =
  (check: Check): Check =>
  (v) =>
    v === undefined || check(v);
const nullable =
  (check: Check): Check =>
  (v) =>
    v === null || check(v);
const oneOf =
  (...values: readonly unknown[]): Check =>
  (v) =>
    values.includes(v);
const arrayOf =
  (check: Check): Check =>
  (v) =>
    Array.isArray(v) && v.every(check);

/** An object whose listed fields each pass their check (fields not listed are not looked at). */
const shape =
  <T = Fields>(fields: Readonly<Record<string, Check>>) =>
  (v: unknown): v is T =>
    isObject(v) && Object.entries(fields).every(([key, check]) => check(v[key]));

const isServer = shape({
  port: isNumber,
  host: isString,
  workers: (w) => w === 'auto' || isNumber(w),
  trusted_proxies: isStringArray,
  drain_timeout: isNumber,
  max_header_size: isNumber,
  max_headers: isNumber,
  keep_alive_timeout: isNumber,
  request_timeout: isNumber,
  max_connections: isNumber,
  max_body_size: isNumber,
  http_redirect_port: isNumber,
});

const isAuth = shape<AuthPlan>({
  enabled: isBoolean,
  type: isString,
  secret: optional(isString),
  publicKeyPem: optional(isString),
  algorithms: isStringArray,
  jwksUri: optional(isString),
  issuer: optional(isString),
  audience: optional((a) => isString(a) || isStringArray(a)),
  clockToleranceSec: isNumber,
  requiredClaims: isStringArray,
  forwardClaims: arrayOf((pair) => isStringArray(pair) && pair.length === 2),
  realm: isString,
  maxTokenLength: isNumber,
  jwks: shape({ timeoutMs: isNumber, cooldownMs: isNumber, cacheMaxAgeMs: isNumber }),
  cache: shape({ size: isNumber, ttlMs: isNumber }),
  options: isObject,
  fingerprint: isString,
});

const isRouteRateLimit = shape<RouteRateLimitPlan>({
  enabled: isBoolean,
  requestsPerSecond: isNumber,
  burst: isNumber,
  key: isString,
  scope: oneOf('route', 'default'),
  ipv6Prefix: isNumber,
  legacyHeaders: isBoolean,
});

const isLimiter = shape<LimiterPlan>({
  store: (store) =>
    shape({ kind: oneOf('embedded') })(store) ||
    shape({ kind: oneOf('redis'), url: isString, keyPrefix: isString })(store),
  maxKeys: isNumber,
  onStoreError: oneOf('allow', 'deny'),
  storeTimeoutMs: isNumber,
});

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

const isTimeouts = shape({ connectMs: isNumber, responseMs: isNumber, idleMs: isNumber });

const isRetry = shape({
  attempts: isNumber,
  on: arrayOf((c) => isString(c) || isNumber(c)),
  methods: isStringArray,
  backoff: shape({ baseMs: isNumber, maxMs: isNumber }),
  budget: isNumber,
  bufferBytes: isNumber,
});

const isBreaker = shape({
  maxRequests: isNumber,
  maxPending: isNumber,
  errorRatio: isNumber,
  minRequests: isNumber,
  windowMs: isNumber,
  openForMs: isNumber,
  halfOpenRequests: isNumber,
});

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
    isBreaker(v.breaker) &&
    isString(v.fingerprint)
  );
}

const isRoute = shape<RoutePlan>({
  path: isString,
  methods: nullable(isStringArray),
  target: nullable(isString),
  upstream: isString,
  timeoutMs: nullable(isNumber),
  upstreamPath: shape({ rewrite: nullable(isString), stripPrefix: isBoolean, basePath: isString }),
  middleware: isStringArray,
  auth: nullable(isAuth),
  rateLimit: nullable(isRouteRateLimit),
});

// Issue 15: the edge's TLS.
const isServerTls = shape({
  certificates: (list) =>
    Array.isArray(list) &&
    list.length > 0 &&
    list.every(
      shape({
        certPem: isString,
        keyPem: isString,
        certFile: isString,
        source: isString,
        name: isString,
        dnsNames: isStringArray,
        info: shape({ serial: isString, notAfter: isNumber, altNames: isStringArray }),
      }),
    ),
  minVersion: oneOf('TLSv1.2', 'TLSv1.3'),
  http2: isBoolean,
  clientAuth: oneOf('none', 'request', 'require'),
  clientCaPem: nullable(isString),
  forwardClientCert: isBoolean,
});

const hasUpstream = (upstreams: UpstreamPlan[], route: RoutePlan) =>
  upstreams.some((upstream) => upstream.name === route.upstream);

const isPlanShape = shape<Plan>({
  hash: isString,
  source: isString,
  configDir: isString,
  server: isServer,
  logging: shape({ format: isString, level: isString }),
  metrics: nullable(shape({ path: isString, enabled: isBoolean })),
  tracing: nullable(shape({ endpoint: isString, enabled: isBoolean })),
  limiter: nullable(isLimiter),
  upstreams: arrayOf(isUpstream),
  routes: (routes) => Array.isArray(routes) && routes.length > 0 && routes.every(isRoute),
  serverTls: nullable(isServerTls),
});

export function isPlan(v: unknown): v is Plan {
  return isPlanShape(v) && v.routes.every((route) => hasUpstream(v.upstreams, route));
}
