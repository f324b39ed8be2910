import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { buildPlan } from '../../src/primary/plan/build.js';
import { configDirOf, loadConfigText } from '../../src/shared/config/load.js';
import { isPlan } from '../../src/shared/plan/check.js';
import type { Plan } from '../../src/shared/plan/types.js';
import { MiddlewareRegistry } from '../../src/worker/middleware/registry.js';

const dir = mkdtempSync(join(tmpdir(), 'portico-plan-'));
const file = join(dir, 'config.yaml');
const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' })
  .publicKey.export({ type: 'spki', format: 'pem' })
  .toString();
writeFileSync(join(dir, 'key.pem'), pem);

function plan(yaml: string, env: NodeJS.ProcessEnv = {}): Plan {
  return buildPlan(loadConfigText(yaml, file, new MiddlewareRegistry(), env), file, configDirOf(file), env);
}

const BASE = `
auth:
  public_key: key.pem
  issuer: static
rate_limit:
  requests_per_second: 5
routes:
  - path: /a/*
    target: http://127.0.0.1:9000/base
    strip_prefix: true
    middleware: [auth, ratelimit]
  - path: /b/:id
    methods: [get]
    target: http://127.0.0.1:9001
    rewrite: /items/:id
    middleware: [auth, ratelimit]
    rate_limit: { burst: 3 }
  - path: /c
    target: http://127.0.0.1:9002
    middleware: [auth]
    auth: { audience: other }
`;

describe('the plan', () => {
  test('is JSON that survives the IPC channel and passes its own shape check', () => {
    const p = plan(BASE);
    const copy: unknown = JSON.parse(JSON.stringify(p));
    assert.deepEqual(copy, p);
    assert.ok(isPlan(copy));
    assert.ok(!isPlan({ ...p, routes: [{ ...p.routes[0], target: 7 }] }));
    assert.ok(!isPlan({ ...p, server: undefined }));
  });

  test('the shape check refuses a plan with any one field of the wrong kind', () => {
    const p = plan(BASE);
    /** A copy of the plan with one value at `path` replaced. */
    const broken = (path: (string | number)[], value: unknown): unknown => {
      const copy = JSON.parse(JSON.stringify(p)) as Record<string, unknown>;
      let at: Record<string | number, unknown> = copy;
      for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
      at[path.at(-1) as string | number] = value;
      return copy;
    };
    const cases: [(string | number)[], unknown][] = [
      [['hash'], 1],
      [['server', 'workers'], 'many'],
      [['server', 'trusted_proxies'], [1]],
      [['logging', 'level'], null],
      [['metrics'], { path: '/m' }],
      [['tracing'], 'on'],
      [['limiter', 'store', 'kind'], 'memcached'],
      [['limiter', 'onStoreError'], 'ignore'],
      [['routes'], []],
      [['routes', 0, 'methods'], 'GET'],
      [['routes', 0, 'upstream'], 'nowhere'],
      [['routes', 0, 'upstreamPath', 'stripPrefix'], 'yes'],
      [['routes', 0, 'auth', 'secret'], 5],
      [['routes', 0, 'auth', 'audience'], [1]],
      [['routes', 0, 'auth', 'forwardClaims'], [['sub']]],
      [['routes', 0, 'auth', 'jwks', 'cooldownMs'], '30s'],
      [['routes', 0, 'auth', 'cache'], null],
      [['routes', 0, 'rateLimit', 'scope'], 'global'],
      [['routes', 0, 'rateLimit', 'quotas'], [{ limit: 5, per: 'year' }]],
      [['routes', 0, 'rateLimit', 'ban'], { after: 1 }],
      [['upstreams', 0, 'targets'], []],
    ];
    for (const [path, value] of cases) assert.ok(!isPlan(broken(path, value)), path.join('.'));
  });

  test('routes carry their resolved slices', () => {
    const [a, b, c] = plan(BASE).routes as [Plan['routes'][0], Plan['routes'][0], Plan['routes'][0]];
    assert.deepEqual(a.upstreamPath, { rewrite: null, stripPrefix: true, basePath: '/base' });
    assert.deepEqual(b.methods, ['GET']);
    assert.deepEqual(b.upstreamPath, { rewrite: '/items/:id', stripPrefix: false, basePath: '/' });
    // No route timeout: each try gets its upstream's timeouts.response.
    assert.equal(b.timeoutMs, null);
    assert.deepEqual(a.rateLimit, {
      enabled: true,
      requestsPerSecond: 5,
      burst: 10,
      key: 'ip',
      scope: 'default',
      ipv6Prefix: 64,
      legacyHeaders: false,
      quotas: [],
      ban: null,
    });
    assert.equal(b.rateLimit?.burst, 3);
    assert.equal(b.rateLimit?.scope, 'route');
    assert.equal(c.rateLimit, null);
    // The key file's text, read in the primary; the algorithm pinned from the key type.
    assert.equal(a.auth?.publicKeyPem, pem);
    assert.deepEqual(a.auth?.algorithms, ['ES256']);
  });

  test('routes with equal auth settings share a verifier fingerprint; others do not', () => {
    const [a, b, c] = plan(BASE).routes;
    assert.equal(a?.auth?.fingerprint, b?.auth?.fingerprint);
    assert.notEqual(a?.auth?.fingerprint, c?.auth?.fingerprint);
  });

  test('defaults come from the schema when a section is absent', () => {
    const p = plan(`
routes:
  - path: /a
    target: http://127.0.0.1:9000
    middleware: [auth, ratelimit]
    auth: { secret: s3cret }
`);
    const auth = p.routes[0]?.auth;
    assert.equal(auth?.realm, 'portico');
    assert.equal(auth?.clockToleranceSec, 5);
    assert.equal(auth?.maxTokenLength, 8192);
    assert.deepEqual(auth?.cache, { size: 10_000, ttlMs: 60_000 });
    assert.deepEqual(p.limiter, {
      store: { kind: 'embedded' },
      maxKeys: 100_000,
      onStoreError: 'allow',
      storeTimeoutMs: 250,
      counters: false,
    });
  });

  test("a target: route's implicit pool gets the timeouts and retry defaults", () => {
    const [pool] = plan('routes:\n  - path: /a\n    target: http://127.0.0.1:9000\n').upstreams;
    assert.deepEqual(pool?.timeouts, { connectMs: 5_000, responseMs: 30_000, idleMs: 60_000 });
    assert.deepEqual(pool?.retry, {
      attempts: 1,
      on: ['connect_failure', 'reset_before_response'],
      methods: ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE'],
      backoff: { baseMs: 25, maxMs: 250 },
      budget: 0.2,
      bufferBytes: 65_536,
    });
  });

  test('REDIS_URL is read once, in the primary, into the store choice', () => {
    const p = plan(BASE, { REDIS_URL: 'redis://127.0.0.1:6390' });
    assert.deepEqual(p.limiter?.store, {
      kind: 'redis',
      keyPrefix: 'portico:rl:',
      redis: { mode: 'standalone', url: 'redis://127.0.0.1:6390', sentinelName: '', nodes: [] },
    });
  });

  test('the hash depends on the content, not on key order or formatting', () => {
    const reordered = `
routes:
  - target: http://127.0.0.1:9000/base
    middleware: [auth, ratelimit]
    strip_prefix: true
    path: /a/*
  - path: /b/:id
    methods: [GET]
    target: http://127.0.0.1:9001
    rewrite: /items/:id
    middleware: [auth, ratelimit]
    rate_limit: {burst: 3}
  - {path: /c, target: 'http://127.0.0.1:9002', middleware: [auth], auth: {audience: other}}
rate_limit: { requests_per_second: 5 }
auth: { issuer: static, public_key: key.pem }
`;
    const hash = plan(BASE).hash;
    assert.match(hash, /^[0-9a-f]{64}$/);
    assert.equal(plan(reordered).hash, hash);
    assert.notEqual(plan(BASE.replace('9002', '9003')).hash, hash);
  });
});
