import { isIP } from 'node:net';
import { z } from 'zod';
import { parseRoutePattern } from '../route-pattern.js';
import { authOverrideSchema, authSchema } from './auth-schema.js';
import { byteSize, describeInput, duration, optionalDuration } from './fields.js';
import { HTTP_METHODS } from './methods.js';
import { upstreamsSchema } from './upstream-schema.js';

/*
 * The one declaration of Portico's configuration. Every field carries its meaning
 * (`describe`) and its default; `npm run docs:config` renders the README's config
 * reference from this file and a test fails when the two drift apart.
 */

export { HTTP_METHODS } from './methods.js';

const ipOrCidr = z.string().refine(
  (value) => {
    const [address, bits, extra] = value.split('/');
    const family = isIP(address ?? '');
    if (family === 0 || extra !== undefined) return false;
    if (bits === undefined) return true;
    const n = Number(bits);
    return /^\d+$/.test(bits) && n <= (family === 4 ? 32 : 128);
  },
  { message: 'must be an IP address or CIDR range, e.g. 10.0.0.0/8 or ::1' },
);

const upstreamUrl = z.string().superRefine((value, ctx) => {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: `invalid URL "${value}" (expected http://host:port or https://…)`,
    });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: `target must use http:// or https://, got "${value}"` });
  } else if (url.search || url.hash || url.username || url.password) {
    ctx.addIssue({ code: 'custom', message: 'target must not contain a query, fragment or credentials' });
  }
});

// Issue 15: TLS at the edge. Files are read and checked in load.ts (`checkServerTls`).
const serverTlsSchema = z
  .strictObject({
    certificates: z
      .array(
        z.strictObject({
          cert: z
            .string()
            .min(1)
            .describe('PEM certificate chain (leaf first); relative paths are from the config file.'),
          key: z.string().min(1).describe('PEM private key of the leaf certificate (not encrypted).'),
        }),
      )
      .min(1, 'at least one certificate is required')
      .describe(
        'One or more certificates; the one whose SAN matches the SNI name is served, the first is the default.',
      ),
    min_version: z
      .enum(['TLSv1.2', 'TLSv1.3'])
      .default('TLSv1.2')
      .describe('Oldest TLS version accepted; older handshakes fail (counted as `protocol_version`).'),
    http2: z
      .boolean()
      .default(false)
      .describe(
        'Offer HTTP/2 by ALPN (`h2`), with HTTP/1.1 on the same port for clients without it. Upstream exchanges stay HTTP/1.1.',
      ),
    client_auth: z
      .enum(['none', 'request', 'require'])
      .default('none')
      .describe(
        'Client certificates: `request` asks for one (a verified one is in `contextOf(req).clientCert`), `require` closes the connection at the handshake unless the client presents a valid one. Verified against `client_ca`.',
      ),
    client_ca: z
      .string()
      .min(1)
      .optional()
      .describe(
        'PEM bundle of the CAs client certificates are verified against; needed for `request` and `require`.',
      ),
    forward_client_cert: z
      .boolean()
      .default(false)
      .describe(
        "Send the verified client certificate's subject, SAN URIs and SHA-256 fingerprint upstream as `X-Client-Cert-Subject`, `X-Client-Cert-URI`, `X-Client-Cert-Fingerprint`. Client-sent `X-Client-Cert-*` headers are always removed.",
      ),
  })
  .optional();

const serverSchema = z
  .strictObject({
    port: z.number().int().min(1).max(65535).default(8080).describe('TCP port the gateway listens on.'),
    host: z.string().min(1).default('0.0.0.0').describe('Address to bind; use `::` for dual-stack.'),
    workers: z
      .union([z.number().int().min(1).max(256), z.literal('auto')], {
        error: (issue) => `must be an integer 1–256 or auto, got ${describeInput(issue.input)}`,
      })
      .default('auto')
      .describe('Number of worker processes; `auto` means one per CPU (`os.availableParallelism()`).'),
    trusted_proxies: z
      .array(ipOrCidr)
      .default([])
      .describe(
        'Peers (IPs or CIDRs) whose `X-Forwarded-*` headers are believed. From anyone else they are replaced.',
      ),
    drain_timeout: duration('10s', '10m').describe(
      'On SIGTERM/SIGINT, how long in-flight requests may take to finish before connections are closed.',
    ),
    max_header_size: z
      .number()
      .int()
      .min(8 * 1024)
      .max(1024 * 1024)
      .default(32 * 1024)
      .describe(
        "Largest request head (request line + headers) in bytes; larger gets 431. Node's 16 KiB default is tight for big JWTs plus cookies.",
      ),
    max_headers: z
      .number()
      .int()
      .min(8)
      .max(10_000)
      .default(100)
      .describe(
        'Most header fields a request may carry (as Envoy); more gets 431, never a forward with some of them dropped.',
      ),
    keep_alive_timeout: duration('5s', '10m').describe(
      'Idle time allowed between requests on a client keep-alive connection (announced in `Keep-Alive: timeout=`); it is closed one second later.',
    ),
    request_timeout: duration('5m', '1h').describe(
      'Upper bound on receiving a whole client request (headers and body); slow clients get 408. The headers alone must arrive within 60 s, or this, if smaller.',
    ),
    max_body_size: byteSize(0, 2 ** 40).describe(
      'Largest request body (bytes, or e.g. `1MiB`); 0 = unlimited. A larger one gets 413 before it reaches the upstream: at once for a `Content-Length` over it, else counted while it arrives (see Resilience).',
    ),
    max_connections: z
      .number()
      .int()
      .min(0)
      .max(1_000_000)
      .default(0)
      .describe(
        'Client connections open at once, per worker (0 = unlimited); a request on a connection beyond it gets a 503 and the connection closes.',
      ),
    tls: serverTlsSchema.describe('Serve HTTPS on `port` (see TLS); absent = plain HTTP.'),
    http_redirect_port: z
      .number()
      .int()
      .min(0)
      .max(65535)
      .default(0)
      .describe(
        'A plain-HTTP port (on `host`) answering every request with a 308 to the same path on `https://` and `port`; 0 = none. Needs `tls`.',
      ),
  })
  .prefault({});

// `ip`, `sub`, `route+ip`, or `header:<Name>` with an RFC 9110 token as the name.
const rateLimitKey = z
  .string()
  .regex(
    /^(ip|sub|route\+ip|header:[!#$%&'*+.^_`|~0-9A-Za-z-]+)$/,
    'must be ip, sub, route+ip or header:<Name>',
  );
const requestsPerSecond = z.number().min(0.001).max(1e6);
const burst = z.number().int().min(1).max(1e6);

const rateLimitSchema = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe('Set to false to make the `ratelimit` middleware pass everything.'),
    requests_per_second: requestsPerSecond
      .default(10)
      .describe('Token refill rate per key (0.001–1e6; the refill interval is kept to the microsecond).'),
    burst: burst.default(10).describe('Bucket capacity: requests allowed at once.'),
    key: rateLimitKey
      .default('ip')
      .describe(
        'Whose bucket: `ip` (client IP, trusted-proxy aware), `sub` (JWT subject), `header:<Name>` or `route+ip` (one budget per route and IP). Without the subject or header, the client IP is used.',
      ),
    ipv6_prefix: z
      .number()
      .int()
      .min(32)
      .max(128)
      .default(64)
      .describe(
        'IPv6 clients are keyed by this network prefix (one subscriber usually holds a whole /64); 128 keys each address.',
      ),
    on_store_error: z
      .enum(['allow', 'deny'])
      .default('allow')
      .describe(
        'When the shared store cannot answer: `allow` limits per worker in memory until it returns; `deny` answers 503.',
      ),
    store_timeout: duration('250ms', '10s').describe(
      'Upper bound on one store call (Redis command or embedded-store round trip) before `on_store_error` applies.',
    ),
    legacy_headers: z
      .boolean()
      .default(false)
      .describe(
        'Also send `X-RateLimit-Limit`, `-Remaining` and `-Reset` (Unix seconds when the bucket is full).',
      ),
    max_keys: z
      .number()
      .int()
      .min(100)
      .max(10_000_000)
      .default(100_000)
      .describe(
        'Cap on buckets kept in process memory (embedded store, insurance limiter, block cache); the least recently used go first.',
      ),
  })
  .prefault({});

const routeRateLimitSchema = z
  .strictObject({
    enabled: z.boolean().optional().describe('Overrides `rate_limit.enabled` for this route.'),
    requests_per_second: requestsPerSecond.optional().describe('Overrides `rate_limit.requests_per_second`.'),
    burst: burst.optional().describe('Overrides `rate_limit.burst`.'),
    key: rateLimitKey.optional().describe('Overrides `rate_limit.key`.'),
  })
  .optional();

const routeSchema = z
  .strictObject({
    path: z
      .string()
      .describe('`/exact`, `/with/:param` or `/prefix/*` (the wildcard also matches `/prefix` itself).'),
    methods: z
      .array(
        z
          .string()
          .transform((m) => m.toUpperCase())
          .pipe(
            z.enum(HTTP_METHODS, {
              // Node hands CONNECT to no request handler: the gateway answers it 405, always.
              error: (issue) =>
                issue.input === 'CONNECT'
                  ? 'CONNECT is never routed: the gateway answers it 405 (it tunnels nothing)'
                  : undefined,
            }),
          ),
      )
      .min(1)
      .optional()
      .describe('Allowed methods; omitted means all. A matched path with another method gets 405.'),
    target: upstreamUrl
      .optional()
      .describe(
        'Upstream base URL (`http://` or `https://`); its path is prepended. Shorthand for a pool of one target with the `upstreams` defaults.',
      ),
    upstream: z
      .string()
      .optional()
      .describe(
        'Name of an entry of `upstreams` to send to. A route has exactly one of `target` and `upstream`.',
      ),
    middleware: z
      .array(z.string())
      .default([])
      .describe('Middleware names in order; the first listed is outermost.'),
    strip_prefix: z
      .boolean()
      .default(false)
      .describe('For `/prefix/*` routes: forward only the part matched by `*`.'),
    rewrite: z
      .string()
      .optional()
      .describe("Upstream path template using the route's `:params` and `*`, e.g. `/accounts/:id`."),
    timeout: optionalDuration().describe(
      "Overrides the upstream's `timeouts.response` for this route, and bounds all its tries together: the response headers must arrive within this time of the first try, else 504. Unset: each try gets `timeouts.response`.",
    ),
    auth: authOverrideSchema.describe(
      'Per-route `auth` settings; each key given here replaces the global `auth` key of the same name.',
    ),
    rate_limit: routeRateLimitSchema.describe(
      "This route's own rate-limit budget: its buckets are separate from the global ones; unset fields inherit from `rate_limit`.",
    ),
  })
  .superRefine((route, ctx) => {
    if ((route.target === undefined) === (route.upstream === undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: route.target === undefined ? [] : ['upstream'],
        message:
          route.target === undefined
            ? 'a route needs exactly one of target and upstream, it has neither'
            : 'a route needs exactly one of target and upstream, it has both',
      });
    }
    const pattern = parseRoutePattern(route.path);
    if ('error' in pattern) {
      ctx.addIssue({
        code: 'custom',
        path: ['path'],
        message: `invalid route path "${route.path}": ${pattern.error}`,
      });
      return;
    }
    if (route.strip_prefix && pattern.kind !== 'wildcard') {
      ctx.addIssue({
        code: 'custom',
        path: ['strip_prefix'],
        message: 'only applies to wildcard routes (/prefix/*)',
      });
    }
    if (route.rewrite !== undefined) {
      if (route.strip_prefix) {
        ctx.addIssue({ code: 'custom', path: ['rewrite'], message: 'cannot be combined with strip_prefix' });
      }
      if (!route.rewrite.startsWith('/')) {
        ctx.addIssue({ code: 'custom', path: ['rewrite'], message: 'must start with "/"' });
      }
      for (const [, name] of route.rewrite.matchAll(/:([A-Za-z_][A-Za-z0-9_]*)/g)) {
        if (!pattern.paramNames.includes(name as string)) {
          ctx.addIssue({
            code: 'custom',
            path: ['rewrite'],
            message: `uses ":${name}" which the path does not define`,
          });
        }
      }
      if (route.rewrite.includes('*') && pattern.kind !== 'wildcard') {
        ctx.addIssue({ code: 'custom', path: ['rewrite'], message: 'uses "*" but the path has no wildcard' });
      }
    }
    if (route.rate_limit !== undefined && !route.middleware.includes('ratelimit')) {
      ctx.addIssue({
        code: 'custom',
        path: ['rate_limit'],
        message: 'has no effect: the route does not list the ratelimit middleware',
      });
    }
  });

const logLevels = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

const loggingSchema = z
  .strictObject({
    format: z
      .enum(['json', 'text'])
      .default('json')
      .describe('`json` (one object per line) or `text` (human).'),
    level: z
      .enum(logLevels)
      .default('info')
      .describe('Minimum level: trace, debug, info, warn, error, fatal, silent.'),
  })
  .prefault({});

const metricsSectionSchema = z.strictObject({
  prometheus: z
    .strictObject({
      enabled: z
        .boolean()
        .default(true)
        .describe('Serve Prometheus metrics; `false` also turns the `metrics` middleware into a no-op.'),
      path: z
        .string()
        .regex(/^\/[^?#]*$/, 'must be a path starting with "/"')
        .default('/metrics')
        .describe(
          'Path on the gateway port that serves the cluster-wide metrics, before route matching and middleware.',
        ),
      port: z
        .number()
        .int()
        .min(1)
        .max(65535)
        .optional()
        .describe('Deprecated alias of `admin.port` (logs a warning); ignored when `admin.port` is set.'),
      host: z
        .string()
        .min(1)
        .optional()
        .describe('Deprecated alias of `admin.host` (logs a warning); ignored when `admin.host` is set.'),
    })
    .prefault({})
    .describe('Prometheus exposition.'),
});

const metricsSchema = metricsSectionSchema.optional();

const adminSchema = z
  .strictObject({
    host: z
      .string()
      .min(1)
      .default('127.0.0.1')
      .describe(
        "Address the primary's admin listener binds (health, readiness, metrics, `/admin/*`); loopback unless you open it.",
      ),
    port: z.number().int().min(1).max(65535).default(9901).describe('TCP port of the admin listener.'),
    token: z
      .string()
      .min(1)
      .optional()
      .describe(
        'When set, every `/admin/*` endpoint requires `Authorization: Bearer <token>`; `/healthz`, `/readyz` and `/metrics` stay open. Use `${VAR}`.',
      ),
  })
  .prefault({});

const reloadSchema = z
  .strictObject({
    watch: z
      .boolean()
      .default(true)
      .describe(
        'Reload when the config file changes (its directory is watched, so editor renames and ConfigMap symlink swaps count). SIGHUP and `POST /admin/reload` reload either way.',
      ),
  })
  .prefault({});

const otelSectionSchema = z.strictObject({
  enabled: z
    .boolean()
    .default(true)
    .describe('Export traces over OTLP gRPC; `false` turns the `tracing` middleware into a no-op.'),
  endpoint: z
    .string()
    .regex(/^[^\s/:]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/, 'must be host:port without a scheme')
    .default('localhost:4317')
    .describe('Collector `host:port` (OTLP gRPC, e.g. Jaeger all-in-one or an OpenTelemetry Collector).'),
  tls: z
    .boolean()
    .default(false)
    .describe(
      'Use TLS (system CAs) to reach the collector; the default is plaintext gRPC, as local collectors expect.',
    ),
  service_name: z.string().min(1).default('portico').describe('`service.name` of the exported spans.'),
  sampling_ratio: z
    .number()
    .min(0)
    .max(1)
    .default(1)
    .describe(
      'Fraction of new traces sampled (0–1). An incoming `traceparent` keeps its own sampled flag (parent-based).',
    ),
  export_interval: duration('5s', '1m').describe(
    'How long finished spans are batched before export (the batch span processor delay).',
  ),
  export_timeout: duration('5s', '1m').describe(
    'Bound on one export to the collector, and on the final flush at shutdown.',
  ),
  max_queue_size: z
    .number()
    .int()
    .min(1)
    .max(1_000_000)
    .default(2048)
    .describe(
      'Spans buffered per worker while the collector is slow or down; beyond it new spans are dropped.',
    ),
});

const otelSchema = otelSectionSchema.optional();

const redisSchema = z
  .strictObject({
    url: z
      .string()
      .regex(/^(redis|rediss):\/\/.+/, 'must be a redis:// or rediss:// URL')
      .optional()
      .describe(
        'Standalone Redis for shared state (rate-limit buckets). Unset: env `REDIS_URL`, else state stays in the instance.',
      ),
    key_prefix: z
      .string()
      .min(1)
      .max(64)
      .default('portico:rl:')
      .describe('Prefix of every rate-limit key; instances sharing a prefix share budgets.'),
  })
  .prefault({});

export const configSchema = z
  .strictObject({
    server: serverSchema.describe('Listener and process settings.'),
    upstreams: upstreamsSchema.describe(
      'Named pools of upstream targets (see Upstreams); a route sends to one with `upstream: name`.',
    ),
    routes: z.array(routeSchema).min(1, 'at least one route is required').describe('Routing table.'),
    logging: loggingSchema.describe('Structured logs (pino).'),
    auth: authSchema.describe('Global settings of the `auth` middleware.'),
    rate_limit: rateLimitSchema.describe('Global settings of the `ratelimit` middleware.'),
    admin: adminSchema.describe("The primary's admin listener (see Admin API)."),
    reload: reloadSchema.describe('Live reload (see Reloading).'),
    metrics: metricsSchema.describe('Prometheus metrics.'),
    otel: otelSchema.describe('OpenTelemetry tracing.'),
    redis: redisSchema.describe('Shared state.'),
  })
  .superRefine(
    (config, ctx) => {
      // Runs even when other keys are wrong (see `when`): an upstream that failed validation
      // is still defined, so only names missing from `upstreams:` are reported.
      config.routes.forEach((route, index) => {
        if (typeof route?.upstream === 'string' && !Object.hasOwn(config.upstreams, route.upstream)) {
          const known = Object.keys(config.upstreams);
          ctx.addIssue({
            code: 'custom',
            path: ['routes', index, 'upstream'],
            message: `unknown upstream "${route.upstream}" (${known.length === 0 ? 'no upstreams are defined' : `defined: ${known.join(', ')}`})`,
          });
        }
      });
    },
    {
      when: ({ value }) => {
        const v = value as { routes?: unknown; upstreams?: unknown } | undefined;
        return Array.isArray(v?.routes) && typeof v.upstreams === 'object' && v.upstreams !== null;
      },
    },
  );

/** The resolved `metrics` section. */
export type MetricsSettings = z.output<typeof metricsSectionSchema>['prometheus'];
/** The resolved `otel` section. */
export type TracingSettings = z.output<typeof otelSectionSchema>;

/** The configuration after validation and defaults: durations are milliseconds. */
export type Config = z.output<typeof configSchema>;
export type RouteConfig = Config['routes'][number];

const usesMiddleware = (config: Config, name: string) =>
  config.routes.some((route) => route.middleware.includes(name));

/**
 * Fills in the sections a route's middleware implies: without a `metrics:` (or `otel:`)
 * section, listing `metrics` (or `tracing`) on a route turns it on with the defaults, as in
 * the reference article, so a listed middleware is never a silent no-op. Applied once, after
 * validation; what workers receive is this resolved config.
 */
export function withImpliedSections(config: Config): Config {
  return {
    ...config,
    ...(config.metrics === undefined && usesMiddleware(config, 'metrics')
      ? { metrics: metricsSectionSchema.parse({}) }
      : {}),
    ...(config.otel === undefined && usesMiddleware(config, 'tracing')
      ? { otel: otelSectionSchema.parse({}) }
      : {}),
  };
}

/** Issue 15: the validated `server.tls` section (paths as written). */
export type ServerTlsConfig = NonNullable<Config['server']['tls']>;
