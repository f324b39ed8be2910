import { isIP } from 'node:net';
import { z } from 'zod';
import { parseDuration } from './duration.js';
import { byteSize, describeInput, duration } from './fields.js';
import { HTTP_METHODS } from './methods.js';

/*
 * The `upstreams:` section: named pools of targets a route can send to (`upstream: name`).
 * A route's `target:` stays as the one-URL shorthand; the plan turns it into a pool of one
 * with these same defaults.
 */

export const BALANCERS = ['least_request', 'round_robin', 'random', 'hash'] as const;
export type BalanceKind = (typeof BALANCERS)[number];

const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** `_service._proto.name`, as SRV owner names are written. */
const SRV_NAME = /^_[A-Za-z0-9-]+\._(tcp|udp)\.[A-Za-z0-9.-]+$/;

/**
 * One pool target: `http(s)://host:port` (no path: a route's path or `rewrite` decides
 * that) or `srv://_service._proto.name` (with `discovery.srv: true`).
 */
const targetUrl = z.string().superRefine((value, ctx) => {
  if (value.startsWith('srv://')) {
    if (!SRV_NAME.test(value.slice('srv://'.length))) {
      ctx.addIssue({
        code: 'custom',
        message: `invalid SRV target "${value}" (expected srv://_service._proto.name, e.g. srv://_http._tcp.users.internal)`,
      });
    }
    return;
  }
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    ctx.addIssue({
      code: 'custom',
      message: `invalid URL "${value}" (expected http://host:port or https://host:port)`,
    });
    return;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    ctx.addIssue({ code: 'custom', message: `target must use http://, https:// or srv://, got "${value}"` });
  } else if (url.search || url.hash || url.username || url.password) {
    ctx.addIssue({ code: 'custom', message: 'target must not contain a query, fragment or credentials' });
  } else if (url.pathname !== '/') {
    ctx.addIssue({
      code: 'custom',
      message: `an upstream target is scheme://host:port without a path, got "${value}" (a route's path or rewrite sets the upstream path)`,
    });
  }
});

const hashOn = z
  .string()
  .refine(
    (v) =>
      v === 'ip' ||
      (v.startsWith('header:') && HEADER_NAME.test(v.slice(7))) ||
      (v.startsWith('cookie:') && COOKIE_NAME.test(v.slice(7))),
    { message: 'must be ip, header:<Name> or cookie:<name>' },
  );

/** `must be an integer 1–100, got 0` rather than zod's "Too small: expected number to be >=1". */
const integer = (min: number, max: number) => {
  const error = (issue: { input?: unknown }) =>
    `must be an integer ${min}–${max}, got ${describeInput(issue.input)}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
};

/**
 * Cross-field checks run even when another key of the same block is wrong (zod skips them
 * then by default), so one `portico check` shows every problem; only when the keys they
 * compare are valid.
 */
const whenValid =
  (...keys: string[]) =>
  (payload: { value: unknown; issues: readonly { path?: readonly PropertyKey[] }[] }) =>
    keys.every(
      (key) =>
        (payload.value as Record<string, unknown> | undefined)?.[key] !== undefined &&
        !payload.issues.some((issue) => issue.path?.[0] === key),
    );

/**
 * `200`, `200-399`, or a comma-separated list of both (YAML reads a lone `200` as a
 * number). The default goes before the transform, so the reference shows it.
 */
const statusRanges = (fallback: string) =>
  z
    .union([z.number(), z.string()], {
      error: (issue) => `must be a status or range such as 200 or 200-399, got ${describeInput(issue.input)}`,
    })
    .default(fallback)
    .transform(String)
    .refine(
      (v) =>
        v.split(',').every((part) => {
          const m = /^\s*([1-5]\d\d)(?:\s*-\s*([1-5]\d\d))?\s*$/.exec(part);
          return m !== null && (m[2] === undefined || Number(m[2]) >= Number(m[1]));
        }),
      {
        error: (issue) =>
          `must be a status or range such as 200, 200-399 or 200,204, got ${describeInput(issue.input)}`,
      },
    );

/** `50%` or a number 0–100: the share of the pool below which balancing ignores health. */
const percentage = z
  .union([z.number(), z.string()], {
    error: (issue) => `must be a percentage such as 50%, got ${describeInput(issue.input)}`,
  })
  .transform((value, ctx) => {
    const n = typeof value === 'number' ? value : Number(/^\s*(\d+(?:\.\d+)?)\s*%\s*$/.exec(value)?.[1]);
    if (!Number.isFinite(n) || n < 0 || n > 100) {
      ctx.addIssue({ code: 'custom', message: `must be a percentage 0%–100%, got ${describeInput(value)}` });
      return z.NEVER;
    }
    return n;
  });

const hostPort = z.string().refine(
  (v) => {
    const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(v);
    if (!m) return false;
    const port = Number(m[3]);
    // An IP: the resolver is asked directly, with nothing to resolve its own name.
    return port >= 1 && port <= 65535 && (m[1] === undefined ? isIP(m[2] ?? '') === 4 : isIP(m[1]) === 6);
  },
  { message: 'must be ip:port, e.g. 10.0.0.53:53 or [::1]:53' },
);

const healthCheckSchema = z
  .strictObject({
    path: z
      .string()
      .regex(/^\/[^\s]*$/, 'must be a path starting with "/"')
      .default('/healthz')
      .describe('Path requested (GET) on every endpoint.'),
    interval: duration('5s', '1h').describe('Time between two checks of an endpoint.'),
    timeout: duration('1s', '1m').describe('A check that has no answer within this time failed.'),
    healthy_threshold: integer(1, 100)
      .default(2)
      .describe('Passed checks in a row that make an unhealthy endpoint healthy again.'),
    unhealthy_threshold: integer(1, 100)
      .default(3)
      .describe('Failed checks in a row that make a healthy endpoint unhealthy.'),
    expect_status: statusRanges('200-399').describe(
      'Answer statuses that pass: a status, a range, or a comma-separated list.',
    ),
  })
  .superRefine(
    (check, ctx) => {
      if (check.timeout >= check.interval) {
        ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'must be shorter than interval' });
      }
    },
    { when: whenValid('timeout', 'interval') },
  );

const outlierSchema = z
  .strictObject({
    consecutive_failures: integer(0, 1000)
      .default(5)
      .describe(
        'Connect failures, resets, timeouts and 5xx answers in a row (per worker) that eject an endpoint; 0 turns passive detection off.',
      ),
    base_ejection_time: duration('30s', '1h').describe(
      'How long a first ejection lasts; each further ejection of the same endpoint lasts longer, up to `max_ejection_time`.',
    ),
    max_ejection_time: duration('300s', '24h').describe('Longest ejection.'),
    max_ejection_percent: z
      .number({ error: (issue) => `must be a number 0–100, got ${describeInput(issue.input)}` })
      .min(0, 'must be a number 0–100')
      .max(100, 'must be a number 0–100')
      .default(50)
      .describe('Never eject more than this share of the pool (at least one endpoint may always go).'),
  })
  .superRefine(
    (o, ctx) => {
      if (o.max_ejection_time < o.base_ejection_time) {
        ctx.addIssue({
          code: 'custom',
          path: ['max_ejection_time'],
          message: 'must be at least base_ejection_time',
        });
      }
    },
    { when: whenValid('base_ejection_time', 'max_ejection_time') },
  )
  .prefault({});

const dnsRefresh = z
  .string({
    error: (issue) => `must be ttl or a duration such as 30s, got ${describeInput(issue.input)}`,
  })
  .default('ttl')
  .transform((value, ctx): 'ttl' | number => {
    if (value === 'ttl') return 'ttl';
    const ms = parseDuration(value);
    if (ms === undefined || ms < 1000 || ms > 300_000) {
      ctx.addIssue({ code: 'custom', message: `must be ttl or a duration 1s–300s, got "${value}"` });
      return z.NEVER;
    }
    return ms;
  });

const discoverySchema = z
  .strictObject({
    dns_refresh: dnsRefresh.describe(
      "When hostnames are resolved again: `ttl` (when the record's TTL runs out, clamped to 1s–300s) or a fixed duration.",
    ),
    srv: z
      .boolean()
      .default(false)
      .describe(
        'Allow `srv://_service._proto.name` targets: host, port, priority and weight come from SRV records.',
      ),
    resolvers: z
      .array(hostPort)
      .default([])
      .describe(
        "DNS servers (`ip:port`) to ask; empty: the system's (`/etc/resolv.conf`, and `/etc/hosts` for names DNS does not know).",
      ),
  })
  .prefault({});

/* Issue 14, retries and timeouts: `timeouts` and `retry` of an upstream. */

const timeoutsSchema = z
  .strictObject({
    connect: duration('5s', '5m').describe(
      'TCP (and TLS) connect to an endpoint; when it runs out the try failed to connect (504, retried as `connect_failure`).',
    ),
    response: duration('30s', '1h').describe(
      "From a try's start until the response headers (504); a route's `timeout` overrides it.",
    ),
    idle: duration('60s', '1h').describe(
      'No bytes either way on an open exchange: abort it (504 before the response headers, the client cut off after; 408 while the client is still uploading).',
    ),
  })
  .prefault({});

/** What a retry may follow, besides status codes. */
export const RETRY_CONDITIONS = ['connect_failure', 'reset_before_response', 'timeout'] as const;
/** Methods a retry may repeat once the request may have reached the upstream, unless `methods` says so. */
const IDEMPOTENT: readonly string[] = ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE'];

const retryCondition = z.union(
  [
    z.enum(RETRY_CONDITIONS),
    z.number().int().min(200).max(599),
    z
      .string()
      .regex(/^[2-5]\d\d$/)
      .transform(Number),
  ],
  {
    error: (issue) =>
      `must be connect_failure, reset_before_response, timeout or a status code 200–599, got ${describeInput(issue.input)}`,
  },
);

const retrySchema = z
  .strictObject({
    attempts: z
      .number()
      .int()
      .min(0)
      .max(10)
      .default(1)
      .describe('Extra tries after the first (0 = no retries).'),
    on: z
      .array(retryCondition)
      .prefault(['connect_failure', 'reset_before_response'])
      .describe(
        'What is retried: `connect_failure` (the request never left), `reset_before_response` (the connection closed before the response headers), `timeout` (`timeouts.response` or `idle` before the headers), or a status code such as 502, 503, 504.',
      ),
    methods: z
      .array(
        z
          .string()
          .transform((m) => m.toUpperCase())
          .pipe(z.enum(HTTP_METHODS)),
      )
      .prefault(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'])
      .describe(
        'Methods retried on the conditions of `on` other than `connect_failure`, which is retried for every method. POST and PATCH are retried only when listed here.',
      ),
    backoff: z
      .strictObject({
        base: duration('25ms', '1m').describe(
          'Backoff before the first retry is drawn from 0–base (full jitter); it doubles per retry.',
        ),
        max: duration('250ms', '5m').describe(
          'Longest backoff, and the most a 503 `Retry-After` is waited for.',
        ),
      })
      .prefault({})
      .describe('Wait before a retry: full jitter.'),
    budget: percentage
      .prefault('20%')
      .describe(
        "Requests in retry at once (per worker) are at most this share of the upstream's requests in flight, and at least 3.",
      ),
    buffer: byteSize('64KiB', 64 * 1024 * 1024).describe(
      'Request bodies up to this size are kept for replay; a bigger one is never retried once its bytes were sent.',
    ),
  })
  .superRefine((retry, ctx) => {
    if (retry.backoff.max < retry.backoff.base) {
      ctx.addIssue({ code: 'custom', path: ['backoff', 'max'], message: 'must be at least backoff.base' });
    }
    const beyondConnect = retry.on.some((c) => c !== 'connect_failure');
    retry.methods.forEach((method, index) => {
      if (IDEMPOTENT.includes(method) || beyondConnect) return;
      ctx.addIssue({
        code: 'custom',
        path: ['methods', index],
        message: `${method} is not idempotent and retry.on lists only connect_failure, which is retried for every method anyway: list the statuses or failures ${method} should be replayed on, or drop it`,
      });
    });
    const risky = retry.methods.filter((m) => !IDEMPOTENT.includes(m));
    if (retry.attempts === 0 || risky.length === 0) return;
    for (const status of retry.on) {
      if (typeof status !== 'number' || status >= 500 || status === 408 || status === 429) continue;
      ctx.addIssue({
        code: 'custom',
        path: ['on'],
        message: `retrying ${risky.join(', ')} on ${status} replays a request the upstream answered and may have acted on: retry non-idempotent methods on 5xx, 408 or 429 only`,
      });
    }
  })
  .prefault({});

// --- circuit_breaker (issue 14) ---

const count = (fallback: number, min = 0) => z.number().int().min(min).max(1_000_000).default(fallback);

const circuitBreakerSchema = z
  .strictObject({
    max_requests: count(0).describe(
      'Requests to this upstream in flight at once, per worker (0 = unlimited); beyond it a 503 at once.',
    ),
    max_pending: count(0).describe(
      'Requests waiting for a connection to an endpoint (its TCP connect not done yet), per worker (0 = unlimited); beyond it a 503 at once.',
    ),
    error_ratio: z
      .number()
      .min(0)
      .max(1)
      .default(0)
      .describe(
        'Share (0–1) of the last `window` that failed (connect failures, resets, timeouts, 5xx answers) at which the breaker opens; 0 turns it off.',
      ),
    min_requests: count(20).describe(
      'Exchanges the last `window` must have seen before `error_ratio` can open the breaker.',
    ),
    window: duration('10s', '10m').describe('How far back `error_ratio` and `min_requests` look.'),
    open_for: duration('10s', '5m').describe(
      'How long an open breaker refuses requests before letting probes through; doubles on each trip in a row, up to 5m.',
    ),
    half_open_requests: count(5, 1).describe(
      'Probes let through when `open_for` ends: all succeed → closed; any fails → open again.',
    ),
  })
  .superRefine((b, ctx) => {
    if (b.error_ratio > 0 && b.min_requests === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['min_requests'],
        message: 'must be at least 1 when error_ratio is set (else a single failure opens the breaker)',
      });
    }
    if (b.max_requests > 0 && b.max_pending >= b.max_requests) {
      ctx.addIssue({
        code: 'custom',
        path: ['max_pending'],
        message:
          'must be less than max_requests (a pending request is one of the max_requests in flight, so this could never apply)',
      });
    }
  })
  .prefault({});

// --- tls (issue 15): verified TLS and mTLS to an upstream's https:// targets ---

/** A DNS name or an IP address: what TLS sends as SNI (not for an IP) and checks the certificate names. */
const serverName = z
  .string()
  .refine(
    (v) =>
      isIP(v) !== 0 ||
      (v.length <= 253 && v.split('.').every((label) => /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/.test(label))),
    { message: 'must be a DNS name such as billing.internal, or an IP address' },
  );

const pemPath = (what: string) => z.string().min(1, 'must be a file path').optional().describe(what);

const upstreamTlsSchema = z
  .strictObject({
    ca: pemPath(
      "PEM file of the CA certificate(s) that the upstream's certificate must chain to (only these), relative to the config file. Absent: the default CAs (Node's bundled roots, plus `NODE_EXTRA_CA_CERTS`).",
    ),
    cert: pemPath(
      'PEM file of the client certificate (chain) the gateway presents to the upstream (mTLS); needs `key`.',
    ),
    key: pemPath('PEM file of the private key of `cert`; needs `cert`.'),
    servername: serverName
      .optional()
      .describe(
        "Sent as SNI and the name the upstream's certificate must carry. Absent: the target's host (an IP target: its certificate must name the IP).",
      ),
    insecure_skip_verify: z
      .boolean()
      .default(false)
      .describe(
        'Accept any certificate from the upstream (no chain, name or expiry check): logged as a warning at start and on the reload that turns it on. For tests only.',
      ),
  })
  .superRefine((tls, ctx) => {
    if (tls.cert !== undefined && tls.key === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['key'],
        message: 'cert needs key (the private key of the client certificate)',
      });
    }
    if (tls.key !== undefined && tls.cert === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['cert'],
        message: 'key needs cert (the client certificate it belongs to)',
      });
    }
  });

export type UpstreamTlsConfig = z.output<typeof upstreamTlsSchema>;

export const upstreamSchema = z
  .strictObject({
    targets: z
      .array(
        z.strictObject({
          url: targetUrl.describe(
            '`http://host:port`, `https://host:port` or `srv://_service._proto.name`; a hostname stands for every address it resolves to.',
          ),
          weight: integer(1, 1000)
            .default(1)
            .describe("The target's share of traffic relative to the others (per resolved address)."),
        }),
      )
      .min(1, 'an upstream needs at least one target')
      .describe('Where requests go.'),
    balance: z
      .enum(BALANCERS)
      .default('least_request')
      .describe(
        '`least_request` (the less busy of two random endpoints), `round_robin` (smooth weighted), `random` (weighted) or `hash` (consistent, on `hash_on`).',
      ),
    hash_on: hashOn
      .optional()
      .describe('For `balance: hash`: `ip` (default), `header:<Name>` or `cookie:<name>`.'),
    health_check: healthCheckSchema
      .optional()
      .describe('Active health checks, run by the primary once per instance. Absent: none.'),
    outlier_detection: outlierSchema.describe(
      'Passive health checking on real traffic, in every worker; on by default.',
    ),
    panic_threshold: percentage
      .prefault('50%')
      .describe(
        'When fewer than this share of the endpoints are usable, balance over all of them rather than fail (`0%` turns this off).',
      ),
    discovery: discoverySchema.describe('How target hostnames are resolved.'),
    timeouts: timeoutsSchema.describe('Bounds on each try (see Resilience).'),
    retry: retrySchema.describe('Retries of failed tries (see Resilience).'),
    circuit_breaker: circuitBreakerSchema.describe(
      'Per-worker limits and error-ratio breaker for this upstream (see the README, "Resilience").',
    ),
    tls: upstreamTlsSchema
      .optional()
      .describe(
        'How `https://` targets are verified and which client certificate is presented (see the README, "TLS to upstreams"). Absent: verified against the default CAs and the target\'s host.',
      ),
  })
  .superRefine(
    (upstream, ctx) => {
      if (upstream.hash_on !== undefined && upstream.balance !== 'hash') {
        ctx.addIssue({
          code: 'custom',
          path: ['hash_on'],
          message: `only applies to balance: hash (balance is ${upstream.balance})`,
        });
      }
      if (
        upstream.tls !== undefined &&
        Array.isArray(upstream.targets) &&
        !upstream.targets.some((t) => typeof t?.url === 'string' && t.url.startsWith('https://'))
      ) {
        ctx.addIssue({
          code: 'custom',
          path: ['tls'],
          message: 'applies to https:// targets only, and this upstream has none',
        });
      }
      if (!Array.isArray(upstream.targets) || typeof upstream.discovery?.srv !== 'boolean') return;
      upstream.targets.forEach((target, index) => {
        if (typeof target?.url === 'string' && target.url.startsWith('srv://') && !upstream.discovery.srv) {
          ctx.addIssue({
            code: 'custom',
            path: ['targets', index, 'url'],
            message: 'srv:// targets need discovery.srv: true',
          });
        }
      });
    },
    { when: whenValid('balance') },
  );

export const upstreamsSchema = z
  .record(
    z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'an upstream name is letters, digits, _ . - (at most 64)'),
    upstreamSchema,
  )
  .default({});

export type UpstreamConfig = z.output<typeof upstreamSchema>;
