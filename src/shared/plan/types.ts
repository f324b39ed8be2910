import type { JwtAlgorithm } from '../config/auth-settings.js';
import type { Config, MetricsSettings, TracingSettings } from '../config/schema.js';
import type { CertificateInfo } from '../config/tls-files.js';
import type { BalanceKind } from '../config/upstream-schema.js';

/*
 * The plan: the validated config resolved once, in the primary, into what the workers run.
 * Plain JSON (no `undefined` in required places, no class instances): it crosses the IPC
 * channel as is, and its hash identifies it. Workers import only these types, never the
 * config loader, so neither YAML nor zod is loaded there.
 */

/** The validated `server` section (durations in milliseconds). */
export type ServerPlan = Config['server'];

/** The validated `logging` section. */
export type LoggingPlan = Config['logging'];

/**
 * One route's `auth` settings: the global section merged with the route's override,
 * algorithms pinned and a `public_key` file read (once, in the primary) into its PEM text.
 */
export interface AuthPlan {
  enabled: boolean;
  type: string;
  secret?: string;
  /** PEM text of the public key (inline in the config or read from its file). */
  publicKeyPem?: string;
  algorithms: JwtAlgorithm[];
  jwksUri?: string;
  issuer?: string;
  audience?: string | string[];
  clockToleranceSec: number;
  requiredClaims: string[];
  /** `[claim, lower-case header name]` pairs. */
  forwardClaims: [string, string][];
  realm: string;
  maxTokenLength: number;
  jwks: { timeoutMs: number; cooldownMs: number; cacheMaxAgeMs: number };
  cache: { size: number; ttlMs: number };
  options: Readonly<Record<string, unknown>>;
  /** Equal for equal verifier settings: routes with the same one share a verifier per worker. */
  fingerprint: string;
}

/** One route's `ratelimit` settings: the global section merged with the route's own. */
export interface RouteRateLimitPlan {
  enabled: boolean;
  requestsPerSecond: number;
  burst: number;
  /** `ip`, `sub`, `route+ip` or `header:<Name>`. */
  key: string;
  /** `route`: the route's own budget (it has a `rate_limit` block); `default`: the global one. */
  scope: 'route' | 'default';
  ipv6Prefix: number;
  legacyHeaders: boolean;
}

/** Where rate-limit buckets live: Redis when a URL is in force, else the primary (embedded). */
export type RateLimitStorePlan = { kind: 'redis'; url: string; keyPrefix: string } | { kind: 'embedded' };

/** The worker-wide limiter: one per worker, shared by every `ratelimit` route. */
export interface LimiterPlan {
  store: RateLimitStorePlan;
  maxKeys: number;
  onStoreError: 'allow' | 'deny';
  storeTimeoutMs: number;
}

/**
 * One target of a pool as configured. The primary turns targets into endpoints (one per
 * resolved address) and tells the workers; the plan carries only what was configured.
 */
export interface TargetPlan {
  /** As written in the config (`http://users.internal:9002`, `srv://_http._tcp.users`). */
  url: string;
  /** `address`: an IP literal, one endpoint as is; `dns`: a hostname, one endpoint per
   * A/AAAA address; `srv`: SRV records give the endpoints' hosts, ports and weights. */
  discovery: 'address' | 'dns' | 'srv';
  /** `https:` for TLS to the endpoints (SRV targets: `http:`). */
  protocol: 'http:' | 'https:';
  /** IP literal without brackets, hostname, or (srv) the SRV owner name. */
  host: string;
  /** 0 for srv targets (the records give it). */
  port: number;
  weight: number;
}

/** How `balance: hash` finds a request's key. */
export type HashOn = { kind: 'ip' } | { kind: 'header'; name: string } | { kind: 'cookie'; name: string };

export interface HealthCheckPlan {
  path: string;
  intervalMs: number;
  timeoutMs: number;
  healthyThreshold: number;
  unhealthyThreshold: number;
  /** Inclusive `[low, high]` status ranges that pass. */
  expectStatus: [number, number][];
}

export interface OutlierPlan {
  /** 0: passive detection off. */
  consecutiveFailures: number;
  baseEjectionMs: number;
  maxEjectionMs: number;
  /** 0–100. */
  maxEjectionPercent: number;
}

/** Issue 14: bounds on each try. */
export interface TimeoutsPlan {
  connectMs: number;
  responseMs: number;
  idleMs: number;
}

/** Issue 14: when and how a failed try is tried again. */
export interface RetryPlan {
  /** Extra tries after the first; 0: none. */
  attempts: number;
  /** `connect_failure`, `reset_before_response`, `timeout` and status codes. */
  on: (string | number)[];
  /** Retried on everything in `on`; other methods only on `connect_failure`. */
  methods: string[];
  backoff: { baseMs: number; maxMs: number };
  /** 0–1: requests in retry at once, as a share of the upstream's requests in flight (at least 3). */
  budget: number;
  bufferBytes: number;
}

/** `circuit_breaker` of an upstream (per worker); 0 limits are off. */
export interface BreakerPlan {
  maxRequests: number;
  maxPending: number;
  /** 0–1; 0: the error-ratio breaker is off. */
  errorRatio: number;
  minRequests: number;
  windowMs: number;
  openForMs: number;
  halfOpenRequests: number;
}

export interface UpstreamPlan {
  /** The `upstreams:` key, or for a route's `target:` shorthand the target's origin. */
  name: string;
  /** True for a pool made from a route's `target:` shorthand. */
  implicit: boolean;
  targets: TargetPlan[];
  balance: BalanceKind;
  /** Set when `balance` is `hash`. Header names are lower-case. */
  hashOn: HashOn | null;
  healthCheck: HealthCheckPlan | null;
  outlier: OutlierPlan;
  /** 0–1: below this share of usable endpoints, balance over all of them. */
  panicThreshold: number;
  discovery: { dnsRefresh: 'ttl' | number; srv: boolean; resolvers: string[] };
  timeouts: TimeoutsPlan;
  retry: RetryPlan;
  breaker: BreakerPlan;
  /**
   * Equal for equal settings (sha256 of the rest): a reload keeps the endpoints, their
   * health state and keep-alive pools of an upstream whose fingerprint did not change.
   */
  fingerprint: string;
}

export interface RoutePlan {
  path: string;
  /** `null` allows every method. */
  methods: string[] | null;
  /** The route's `target:` as written, `null` when it names an `upstream:`. */
  target: string | null;
  /** Name of the route's pool in `Plan.upstreams` (for `target:` routes, the implicit one). */
  upstream: string;
  /** The route's `timeout`: overrides the upstream's `timeouts.response` and bounds all tries; null when unset. */
  timeoutMs: number | null;
  /** Inputs of the upstream path template (see worker/proxy/upstream-path.ts). */
  upstreamPath: { rewrite: string | null; stripPrefix: boolean; basePath: string };
  /** Middleware names in order; the first is outermost. */
  middleware: string[];
  /** Present when the route lists `auth`. */
  auth: AuthPlan | null;
  /** Present when the route lists `ratelimit`. */
  rateLimit: RouteRateLimitPlan | null;
}

/** Issue 15: one certificate the edge serves, read and checked by the primary. */
export interface TlsCertificatePlan {
  certPem: string;
  keyPem: string;
  /** Absolute path of the certificate file (named in logs). */
  certFile: string;
  /** The config key that names it (`server.tls.certificates[0]`): the metric's `source`. */
  source: string;
  /** The first DNS SAN, else the CN: the metric's `name`. */
  name: string;
  /** Lower-case DNS SANs (`*.example.com` included): the SNI names it is served for. */
  dnsNames: string[];
  info: CertificateInfo;
}

/** Issue 15: `server.tls` resolved (files read); workers build their secure contexts from it. */
export interface ServerTlsPlan {
  /** The first is served when no SAN matches the SNI name (or there is none). */
  certificates: TlsCertificatePlan[];
  minVersion: 'TLSv1.2' | 'TLSv1.3';
  http2: boolean;
  clientAuth: 'none' | 'request' | 'require';
  clientCaPem: string | null;
  forwardClientCert: boolean;
}

export interface Plan {
  /** sha256 (hex) of the canonical JSON of everything else in the plan. */
  hash: string;
  /** Where the config came from: its file, or `<inline config>`. */
  source: string;
  /** Directory that relative paths in the config are resolved against. */
  configDir: string;
  server: ServerPlan;
  logging: LoggingPlan;
  /** `null` when metrics are off. */
  metrics: MetricsSettings | null;
  /** `null` when tracing is off. */
  tracing: TracingSettings | null;
  /** `null` when no route lists `ratelimit`. */
  limiter: LimiterPlan | null;
  /** Every pool a route sends to, configured or implicit, in a stable order; names are unique. */
  upstreams: UpstreamPlan[];
  routes: RoutePlan[];
  /** Issue 15: the edge's TLS; null: plain HTTP. */
  serverTls: ServerTlsPlan | null;
}
