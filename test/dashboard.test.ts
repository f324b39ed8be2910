import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { stringify } from 'yaml';
import { startGateway } from './helpers/gateway.js';
import { freePort, request, sleep } from './helpers/net.js';
import { startOtlpReceiver } from './helpers/otlp-receiver.js';
import { startRedis } from './helpers/redis.js';
import { type Instance, start } from './helpers/reload.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Black-box: the dashboard's JSON API (`/admin/overview`, `/admin/traffic`, `/admin/errors`)
 * and its page files, through the real CLI with two workers. The primary pulls the workers
 * every 5 s, so figures are awaited, bounded.
 */

const TOKEN = 'dashboard-json-token-0123';
const auth = { authorization: `Bearer ${TOKEN}` };

async function until<T>(
  what: string,
  read: () => Promise<T>,
  ok: (value: T) => boolean,
  ms = 15_000,
): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await read();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}: ${JSON.stringify(value)}`);
    await sleep(200);
  }
}

interface Overview {
  instance: { pid: number; started_at: string; uptime_seconds: number; node: string };
  workers: {
    slot: number;
    pid: number | null;
    uptime_seconds: number | null;
    restarts: number;
    rss_bytes: number | null;
    event_loop_delay_ms: number | null;
  }[];
  config: {
    hash: string;
    loaded_at: string;
    last_reload: { result: string; errors: { path: string | null; line: number | null }[] } | null;
  };
  rate_limit: { store: string; deployment: string | null; reachable: boolean | null };
  tracing: { enabled: boolean; endpoint: string | null; export: string | null };
}

interface TrafficRoute {
  path: string;
  upstream: string | null;
  middleware: string[];
  metrics: boolean;
  traffic: {
    requests_per_second: number;
    errors_5xx_per_second: number;
    p50_ms: number | null;
    p99_ms: number | null;
    requests: number[];
  } | null;
}

describe('the dashboard API', () => {
  let up: Upstream;
  let gw: Instance;
  let closedPort = 0;
  const get = async <T>(path: string) => {
    const reply = await request(`${gw.admin}${path}`, { headers: auth });
    assert.equal(reply.status, 200, `${path}: ${reply.body}`);
    return reply.json<T>();
  };

  before(async () => {
    up = await startUpstream();
    closedPort = await freePort(); // nothing listens there: every request to it is a 502
    gw = await start(
      {
        admin: { token: TOKEN },
        routes: [
          { path: '/api/*', target: up.url, middleware: ['metrics', 'ratelimit'] },
          { path: '/down', target: `http://127.0.0.1:${closedPort}`, middleware: ['metrics'] },
          { path: '/plain', target: up.url },
        ],
        rate_limit: { requests_per_second: 1000, burst: 1000 },
        metrics: {},
      },
      { workers: 2 },
    );
  });
  after(async () => {
    await gw?.gw.stop();
    await up?.close();
  });

  test('GET /admin/overview: instance, workers with loop delay, config, rate-limit store, tracing', async () => {
    const overview = await until(
      'both workers report their event-loop delay',
      () => get<Overview>('/admin/overview'),
      (o) => o.workers.every((w) => typeof w.event_loop_delay_ms === 'number'),
    );
    assert.equal(overview.instance.pid, gw.gw.proc.pid);
    assert.ok(overview.instance.uptime_seconds >= 0);
    assert.deepEqual(
      overview.workers.map((w) => w.slot),
      [0, 1],
    );
    for (const w of overview.workers) {
      assert.equal(typeof w.pid, 'number');
      assert.equal(w.restarts, 0);
      assert.ok((w.rss_bytes ?? 0) > 0);
      assert.ok((w.uptime_seconds ?? -1) >= 0);
    }
    const config = await get<{ hash: string }>('/admin/config');
    assert.equal(overview.config.hash, config.hash);
    assert.equal(overview.config.last_reload, null);
    assert.equal(overview.rate_limit.store, 'embedded');
    assert.equal(overview.rate_limit.deployment, null);
    assert.deepEqual(overview.tracing, { enabled: false, endpoint: null, export: null });
    // The ratelimit middleware reports its store once it is built.
    assert.equal(overview.rate_limit.reachable, true);
  });

  test('GET /admin/traffic: per-route rates and latency from the metrics middleware; "no metrics" without it', async () => {
    for (let i = 0; i < 30; i++) assert.equal((await request(`${gw.gw.url}/api/${i}`)).status, 200);
    const traffic = await until(
      'a rate on /api/*',
      () =>
        get<{ interval_seconds: number; window_seconds: number; routes: TrafficRoute[] }>('/admin/traffic'),
      (t) => (t.routes.find((r) => r.path === '/api/*')?.traffic?.requests_per_second ?? 0) > 0,
    );
    assert.equal(traffic.interval_seconds, 5);
    assert.equal(traffic.window_seconds, 900);
    const api = traffic.routes.find((r) => r.path === '/api/*');
    assert.ok(api?.traffic);
    assert.deepEqual(api.middleware, ['metrics', 'ratelimit']);
    assert.equal(api.metrics, true);
    assert.equal(
      api.traffic.requests.reduce((a, b) => a + b, 0),
      30,
    );
    assert.ok(
      api.traffic.p50_ms !== null && api.traffic.p99_ms !== null && api.traffic.p50_ms <= api.traffic.p99_ms,
    );
    assert.equal(api.traffic.errors_5xx_per_second, 0);
    const plain = traffic.routes.find((r) => r.path === '/plain');
    assert.deepEqual({ metrics: plain?.metrics, traffic: plain?.traffic }, { metrics: false, traffic: null });
  });

  test('GET /admin/errors: a 502 with its route, code and request id, and no query string', async () => {
    const reply = await request(`${gw.gw.url}/down?token=secret-value`, {
      headers: { 'x-request-id': 'dash-502' },
    });
    assert.equal(reply.status, 502);
    const { errors } = await until(
      'the 502 listed',
      () => get<{ errors: Record<string, unknown>[] }>('/admin/errors'),
      (e) => e.errors.some((x) => x.request_id === 'dash-502'),
    );
    const listed = errors.find((x) => x.request_id === 'dash-502');
    assert.ok(listed);
    assert.ok(!Number.isNaN(Date.parse(String(listed.time))));
    assert.deepEqual(
      { ...listed, time: undefined },
      {
        time: undefined,
        route: '/down',
        method: 'GET',
        status: 502,
        code: 'PORTICO_ERR_UPSTREAM_UNAVAILABLE',
        request_id: 'dash-502',
      },
    );
    assert.doesNotMatch(JSON.stringify(errors), /secret-value/);
    // …and the route's 5xx rate counts it.
    await until(
      'a 5xx rate on /down',
      () => get<{ routes: TrafficRoute[] }>('/admin/traffic'),
      (t) => (t.routes.find((r) => r.path === '/down')?.traffic?.errors_5xx_per_second ?? 0) > 0,
    );
  });

  test('a refused reload shows in the overview with its key path and line', async () => {
    const routes = gw.base.routes as Record<string, unknown>[];
    await writeFile(
      gw.file,
      stringify({
        ...gw.base,
        routes: [{ ...routes[0], middleware: ['metrics', 'nope'] }, ...routes.slice(1)],
      }),
    );
    const overview = await until(
      'the refused reload',
      () => get<Overview>('/admin/overview'),
      (o) => o.config.last_reload?.result === 'failure',
    );
    const [problem] = overview.config.last_reload?.errors ?? [];
    assert.equal(problem?.path, 'routes[0].middleware[1]');
    assert.equal(typeof problem?.line, 'number');
    await writeFile(gw.file, stringify(gw.base)); // back to the config in force
  });

  test('the page is served by the admin listener only, open, with a strict Content-Security-Policy', async () => {
    for (const [path, type] of [
      ['/', /^text\/html/],
      ['/dashboard.js', /^text\/javascript/],
      ['/dashboard.css', /^text\/css/],
      ['/favicon.svg', /^image\/svg\+xml/],
    ] as const) {
      const reply = await request(`${gw.admin}${path}`);
      assert.equal(reply.status, 200, path);
      assert.match(String(reply.headers['content-type']), type);
      const csp = String(reply.headers['content-security-policy']);
      assert.match(csp, /default-src 'self'/);
      assert.match(csp, /script-src 'self'(;|$)/);
      assert.match(csp, /style-src 'self'(;|$)/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval|https?:/);
      assert.equal(reply.headers['x-content-type-options'], 'nosniff');
    }
    const html = (await request(`${gw.admin}/`)).body;
    assert.doesNotMatch(html, /<script>|<style|style="|https?:\/\/(?!www\.w3\.org)/);
    // The data needs the token the page asks for.
    for (const path of ['/admin/overview', '/admin/traffic', '/admin/errors'])
      assert.equal((await request(`${gw.admin}${path}`)).status, 401, path);
    // The gateway port has no such page: its routes do not match `/`.
    const onGateway = await request(`${gw.gw.url}/`);
    assert.equal(onGateway.status, 404);
    assert.doesNotMatch(onGateway.body, /Portico dashboard/);
    assert.equal((await request(`${gw.gw.url}/dashboard.js`)).status, 404);
  });
});

describe('the dashboard overview of the rate-limit store and the trace exporter', () => {
  test('Redis reachable and export ok, then Redis killed and the collector gone: unreachable and failing', async () => {
    const up = await startUpstream();
    const redis = await startRedis();
    const receiver = await startOtlpReceiver({ retainSpans: false });
    const gw = await startGateway(
      {
        routes: [{ path: '/*', target: up.url, middleware: ['tracing', 'ratelimit'] }],
        redis: { url: redis.url },
        rate_limit: { requests_per_second: 1000, burst: 1000, store_timeout: '250ms' },
        otel: { endpoint: receiver.endpoint, export_interval: '100ms', export_timeout: '1s' },
      },
      { workers: 1 },
    );
    try {
      const admin = (await gw.waitFor((r) => r.msg === 'admin listener ready')).url as string;
      const overview = () => request(`${admin}/admin/overview`).then((r) => r.json<Overview>());
      for (let i = 0; i < 5; i++) assert.equal((await request(`${gw.url}/a/${i}`)).status, 200);
      const good = await until(
        'the store reachable and an export done',
        overview,
        (o) => o.rate_limit.reachable === true && o.tracing.export === 'ok',
      );
      assert.equal(good.rate_limit.store, 'redis');
      assert.equal(good.rate_limit.deployment, 'standalone');
      assert.deepEqual(good.tracing, { enabled: true, endpoint: receiver.endpoint, export: 'ok' });

      redis.kill('SIGKILL');
      await receiver.close();
      const bad = await until(
        'the store unreachable and the export failing',
        async () => {
          await request(`${gw.url}/b`); // the limiter learns of the store on a call
          return overview();
        },
        (o) => o.rate_limit.reachable === false && o.tracing.export === 'failing',
        20_000,
      );
      assert.equal(bad.rate_limit.store, 'redis');
    } finally {
      await gw.stop();
      await redis.stop();
      await up.close();
    }
  });
});
