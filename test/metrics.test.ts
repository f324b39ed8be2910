import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { parseMetrics, type Sample, sum } from './helpers/metrics.js';
import { freePort, request, sleep } from './helpers/net.js';
import { findExecutable, promtoolCheck, startPrometheus } from './helpers/prometheus.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const ENTRY = fileURLToPath(new URL('./fixtures/custom-entry.js', import.meta.url));
const N = 60;

async function scrape(url: string): Promise<{ text: string; samples: Sample[]; contentType: string }> {
  const reply = await request(url);
  assert.equal(reply.status, 200, reply.body);
  return {
    text: reply.body,
    samples: parseMetrics(reply.body),
    contentType: String(reply.headers['content-type']),
  };
}

describe('cluster-wide Prometheus metrics', () => {
  let upstream: Upstream;
  let gw: RunningGateway;
  let admin: string;

  before(async () => {
    upstream = await startUpstream((req, res, seen) => {
      const body = JSON.stringify(seen);
      setTimeout(
        () => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(body);
        },
        req.url === '/slow' ? 1_500 : 0,
      );
    });
    const adminPort = await freePort();
    admin = `http://127.0.0.1:${adminPort}/metrics`;
    gw = await startGateway(
      {
        routes: [
          // `context` answers with the worker's pid, to show the traffic spread.
          { path: '/users/:id', target: upstream.url, middleware: ['context', 'metrics'] },
          { path: '/slow', target: upstream.url, middleware: ['metrics'] },
          { path: '/down', target: 'http://127.0.0.1:1', middleware: ['metrics'] },
          // An auth-like chain that refuses everything and whose pattern also matches /metrics.
          // `metrics` is listed first so it counts the refusals.
          { path: '/:name', target: upstream.url, middleware: ['metrics', 'deny'] },
        ],
        admin: { port: adminPort },
      },
      { entry: ENTRY, workers: 2 },
    );
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  test(`after ${N} requests over both workers, both endpoints count exactly ${N}`, async () => {
    const pids = new Set<string>();
    for (let i = 0; i < N; i++) {
      const reply = await request(`${gw.url}/users/${i}`); // a new connection each time
      assert.equal(reply.status, 200);
      pids.add(String(reply.headers['x-worker-pid']));
    }
    assert.equal(pids.size, 2, 'both workers served requests');
    const route = { path: '/users/:id' };
    assert.equal(sum((await scrape(admin)).samples, 'gateway_requests_total', route), N);
    // Whichever worker accepts the scrape, it answers with the merged view.
    for (let i = 0; i < 6; i++) {
      const { samples, contentType } = await scrape(`${gw.url}/metrics`);
      assert.match(contentType, /^text\/plain; version=0\.0\.4/);
      assert.equal(sum(samples, 'gateway_requests_total', route), N);
      assert.equal(sum(samples, 'gateway_requests_total', { ...route, status: '200', method: 'GET' }), N);
    }
    // Every worker answered every collection (none fell back to a stale snapshot).
    assert.deepEqual(
      gw.records().filter((r) => String(r.msg).startsWith('metrics: workers did not answer')),
      [],
    );
  });

  test('the duration histogram is consistent and the in-flight gauge follows requests', async () => {
    const { samples } = await scrape(admin);
    const route = { path: '/users/:id', method: 'GET' };
    const count = sum(samples, 'gateway_request_duration_seconds_count', route);
    assert.equal(count, N);
    const buckets = samples
      .filter((s) => s.name === 'gateway_request_duration_seconds_bucket' && s.labels.path === '/users/:id')
      .map((s) => ({ le: s.labels.le === '+Inf' ? Infinity : Number(s.labels.le), value: s.value }))
      .sort((a, b) => a.le - b.le);
    assert.ok(buckets.length >= 10, 'sub-millisecond to tens of seconds');
    assert.equal(buckets[0]?.le, 0.0005);
    for (let i = 1; i < buckets.length; i++)
      assert.ok((buckets[i]?.value ?? 0) >= (buckets[i - 1]?.value ?? 0), 'cumulative buckets');
    assert.equal(buckets.at(-1)?.value, N);
    assert.ok(sum(samples, 'gateway_request_duration_seconds_sum', route) > 0);
    assert.equal(sum(samples, 'gateway_upstream_duration_seconds_count', { path: '/users/:id' }), N);

    assert.equal(sum(samples, 'gateway_requests_in_flight'), 0);
    const slow = request(`${gw.url}/slow`);
    let seen = 0;
    for (let i = 0; i < 40 && seen === 0; i++) {
      await sleep(25);
      seen = sum((await scrape(admin)).samples, 'gateway_requests_in_flight');
    }
    assert.equal(seen, 1, 'one request in flight while /slow waits');
    assert.equal((await slow).status, 200);
    assert.equal(sum((await scrape(admin)).samples, 'gateway_requests_in_flight'), 0);
  });

  test('GET /metrics bypasses routing and middleware: no token needed on an auth chain', async () => {
    assert.equal((await request(`${gw.url}/anything`)).status, 401, 'the chain refuses other paths');
    assert.equal((await request(`${gw.url}/metrics`)).status, 200);
    assert.equal((await request(`${gw.url}/metrics?name[]=gateway_requests_total`)).status, 200);
    const post = await request(`${gw.url}/metrics`, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.equal(post.headers.allow, 'GET, HEAD');
    const samples = (await scrape(admin)).samples;
    // Scrapes are not requests of any route.
    assert.equal(sum(samples, 'gateway_requests_total', { path: '/:name', status: '200' }), 0);
    assert.equal(sum(samples, 'gateway_requests_total', { path: '/:name', status: '401' }), 1);
  });

  test('the path label is the route pattern; unmatched requests share one value', async () => {
    await request(`${gw.url}/users/seven`);
    assert.equal((await request(`${gw.url}/a/b/c`)).status, 404);
    assert.equal((await request(`${gw.url}/x/y/z?q=1`)).status, 404);
    const samples = (await scrape(admin)).samples;
    const paths = new Set(
      samples.filter((s) => s.name === 'gateway_requests_total').map((s) => s.labels.path),
    );
    assert.deepEqual([...paths].sort(), ['(unmatched)', '/:name', '/slow', '/users/:id']);
    assert.equal(sum(samples, 'gateway_requests_total', { path: '(unmatched)', status: '404' }), 2);
  });

  test('upstream errors are counted by kind', async () => {
    const reply = await request(`${gw.url}/down`);
    assert.equal(reply.status, 502);
    const samples = (await scrape(admin)).samples;
    // Per try: the default retry of a connect failure tried the one endpoint again.
    assert.equal(sum(samples, 'gateway_upstream_errors_total', { path: '/down', kind: 'refused' }), 2);
    assert.equal(sum(samples, 'gateway_requests_total', { path: '/down', status: '502' }), 1);
    // Default process metrics are kept per worker.
    const workers = new Set(
      samples.filter((s) => s.name === 'process_resident_memory_bytes').map((s) => s.labels.worker),
    );
    assert.deepEqual([...workers].sort(), ['0', '1', 'primary']);
  });

  test('every admin listener answer is JSON or metrics with an X-Request-Id', async () => {
    const metrics = await request(admin, { headers: { 'x-request-id': 'scrape-1' } });
    assert.equal(metrics.status, 200);
    assert.equal(metrics.headers['x-request-id'], 'scrape-1');
    const missing = await request(admin.replace('/metrics', '/nope'));
    assert.equal(missing.status, 404);
    assert.match(String(missing.headers['x-request-id']), /^[0-9a-f-]{36}$/);
    assert.deepEqual(missing.json(), { error: 'not found' });
    const post = await request(admin, { method: 'POST' });
    assert.equal(post.status, 405);
    assert.match(String(post.headers['x-request-id']), /^[0-9a-f-]{36}$/);
  });

  test('the output passes promtool check metrics', async (t) => {
    const promtool = await findExecutable('promtool');
    if (!promtool) {
      t.skip('promtool not installed (Debian package prometheus; .ci/run installs it)');
      return;
    }
    for (const url of [admin, `${gw.url}/metrics`]) {
      const { code, output } = await promtoolCheck(promtool, (await scrape(url)).text);
      assert.equal(code, 0, output);
    }
  });

  test('a worker that dies is counted as a restart and the counters never go back', async () => {
    const before = sum((await scrape(admin)).samples, 'gateway_requests_total');
    const initial = gw
      .records()
      .filter((r) => r.msg === 'worker listening')
      .map((r) => r.pid);
    const victim = initial[0] as number;
    process.kill(victim, 'SIGKILL');
    await gw.waitFor((r) => r.msg === 'worker died; respawning' && r.worker === victim);
    await gw.waitFor((r) => r.msg === 'worker listening' && !initial.includes(r.pid), 15_000);
    await sleep(200);
    const samples = (await scrape(admin)).samples;
    assert.equal(sum(samples, 'gateway_worker_restarts_total'), 1);
    // The last scrape saw everything the dead worker counted: the total is exact.
    assert.equal(sum(samples, 'gateway_requests_total'), before);
    for (let i = 0; i < 10; i++) await request(`${gw.url}/users/${i}`);
    assert.equal(sum((await scrape(admin)).samples, 'gateway_requests_total'), before + 10);
  });

  test('a worker that exits gracefully hands over its final counts: exact without a scrape', async () => {
    const before = sum((await scrape(admin)).samples, 'gateway_requests_total');
    const restartsBefore = sum((await scrape(admin)).samples, 'gateway_worker_restarts_total');
    for (let i = 0; i < 20; i++) assert.equal((await request(`${gw.url}/users/${i}`)).status, 200);
    // No scrape in between: the draining worker's last numbers only reach the primary by its hand-over.
    const seen = gw
      .records()
      .filter((r) => r.msg === 'worker listening')
      .map((r) => r.pid);
    const victim = seen.at(-1) as number;
    process.kill(victim, 'SIGTERM');
    await gw.waitFor((r) => r.msg === 'worker died; respawning' && r.worker === victim);
    await gw.waitFor((r) => r.msg === 'worker listening' && !seen.includes(r.pid), 15_000);
    await sleep(200);
    const samples = (await scrape(admin)).samples;
    assert.equal(sum(samples, 'gateway_requests_total'), before + 20);
    assert.equal(sum(samples, 'gateway_worker_restarts_total'), restartsBefore + 1);
  });

  test('a real Prometheus scrapes the primary and reports the target up', async (t) => {
    const binary = await findExecutable('prometheus');
    if (!binary) {
      t.skip('prometheus not installed (Debian package prometheus; .ci/run installs it)');
      return;
    }
    const prometheus = await startPrometheus(binary, [new URL(admin).host]);
    try {
      const deadline = Date.now() + 30_000;
      let health = '';
      let total = Number.NaN;
      const expected = sum((await scrape(admin)).samples, 'gateway_requests_total', { path: '/users/:id' });
      while (Date.now() < deadline) {
        const targets = (await request(`${prometheus.url}/api/v1/targets`)).json<{
          data: { activeTargets: { health: string; lastError: string }[] };
        }>();
        health = targets.data.activeTargets[0]?.health ?? '';
        if (health === 'up') {
          const query = encodeURIComponent('sum(gateway_requests_total{path="/users/:id"})');
          const result = (await request(`${prometheus.url}/api/v1/query?query=${query}`)).json<{
            data: { result: { value: [number, string] }[] };
          }>();
          total = Number(result.data.result[0]?.value[1]);
          if (total === expected) break;
        }
        await sleep(500);
      }
      assert.equal(health, 'up', prometheus.output());
      assert.equal(total, expected);
    } finally {
      await prometheus.stop();
    }
  });
});

describe('metrics switched off', () => {
  test('metrics.prometheus.enabled: false makes /metrics an ordinary path and the middleware a no-op', async () => {
    const upstream = await startUpstream();
    const gw = await startGateway({
      routes: [{ path: '/*', target: upstream.url, middleware: ['metrics'] }],
      metrics: { prometheus: { enabled: false } },
    });
    try {
      const reply = await request(`${gw.url}/metrics`);
      assert.equal(reply.status, 200);
      assert.equal(reply.json<{ url: string }>().url, '/metrics', 'proxied upstream like any path');
      // The admin listener runs regardless, with the primary's reload metrics only.
      const admin = (await gw.waitFor((r) => r.msg === 'admin listener ready')).url as string;
      assert.equal((await request(`${admin}/healthz`)).status, 200);
      const own = parseMetrics((await request(`${admin}/metrics`)).body);
      assert.ok(
        own.length > 0 && own.every((s) => s.name.startsWith('portico_config_')),
        JSON.stringify(own),
      );
    } finally {
      assert.equal(await gw.stop(), 0);
      await upstream.close();
    }
  });
});
