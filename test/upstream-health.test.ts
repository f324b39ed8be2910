import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { promisify } from 'node:util';
import type { Server } from 'node:net';
import { describe, test } from 'node:test';
import { parse, stringify } from 'yaml';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { freePort, occupyPort, request, sleep } from './helpers/net.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Black-box: the primary's side of upstream pools through the real CLI, with real upstream
 * processes: active health checks (the first round before any worker runs, thresholds,
 * recovery), `/admin/upstreams`, the endpoint metrics, and health kept across reloads.
 */

interface EndpointJson {
  id: string;
  state: string;
  reason: string;
  since: string;
  in_flight: number;
  weight: number;
  priority: number;
}
interface UpstreamJson {
  name: string;
  implicit: boolean;
  balance: string;
  endpoints: EndpointJson[];
}

async function adminOf(gw: RunningGateway): Promise<string> {
  return (await gw.waitFor((r) => r.msg === 'admin listener ready')).url as string;
}

async function upstreamsOf(admin: string): Promise<UpstreamJson[]> {
  const reply = await request(`${admin}/admin/upstreams`);
  assert.equal(reply.status, 200, reply.body);
  return reply.json<{ upstreams: UpstreamJson[] }>().upstreams;
}

async function endpointOf(admin: string, upstream: string, id: string): Promise<EndpointJson> {
  const pool = (await upstreamsOf(admin)).find((u) => u.name === upstream);
  const endpoint = pool?.endpoints.find((e) => e.id === id);
  assert.ok(endpoint, `no endpoint ${id} in ${upstream}`);
  return endpoint;
}

/** Waits for `condition`, failing after `ms`. */
async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await sleep(10);
  }
}

/** An upstream whose `/healthz` answers `health.status`; every other path answers 200. */
async function service(health = { status: 200 }): Promise<Upstream & { health: { status: number } }> {
  const up = await startUpstream((req: IncomingMessage, res: ServerResponse) => {
    res.writeHead(req.url === '/healthz' ? health.status : 200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  return Object.assign(up, { health });
}

const idOf = (up: Upstream) => `127.0.0.1:${up.port}`;
/** Requests it got that were not health checks. */
const traffic = (up: Upstream) => up.seen.filter((s) => s.url !== '/healthz').length;

/**
 * Requests one after the other until `condition` holds; fails after `ms`. The primary tells
 * the workers of a change within a second, so that is how long traffic may take to follow.
 */
async function sendUntil(url: string, condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`not within ${ms} ms: ${what}`);
    await request(url);
    await sleep(5);
  }
}

/** `n` requests one after the other, each on a fresh connection; their statuses. */
async function send(url: string, n: number): Promise<number[]> {
  const statuses: number[] = [];
  for (let i = 0; i < n; i++) statuses.push((await request(url)).status);
  return statuses;
}
const isCheck = (up: Upstream) => up.seen.filter((s) => s.url === '/healthz').length;

describe('upstream health: active checks', () => {
  test('the first check round ends before any worker starts: /readyz answers 503 until then; an endpoint that does not answer starts unhealthy', async () => {
    const good = await service();
    const held: ServerResponse[] = [];
    const slow = await startUpstream((req, res) => {
      if (req.url === '/healthz') held.push(res);
      else res.end('ok');
    });
    const gw = await startGateway(
      {
        upstreams: {
          users: {
            targets: [{ url: good.url }, { url: slow.url }],
            health_check: { interval: '5s', timeout: '2s' },
          },
        },
        routes: [{ path: '/*', upstream: 'users' }],
      },
      { waitReady: false },
    );
    try {
      const admin = await adminOf(gw);
      await until(() => isCheck(slow) > 0, 5_000, 'the slow endpoint was checked');
      const early = await request(`${admin}/readyz`);
      assert.equal(early.status, 503);
      assert.deepEqual(early.json(), { error: 'not ready: workers starting' });
      assert.ok(!gw.records().some((r) => r.msg === 'portico ready'), 'workers ran before the check ended');
      await gw.waitFor((r) => r.msg === 'portico ready', 15_000);
      assert.equal((await request(`${admin}/readyz`)).status, 200);
      const pool = (await upstreamsOf(admin)).find((u) => u.name === 'users');
      assert.deepEqual(
        pool?.endpoints.map(({ id, state, reason }) => ({ id, state, reason })),
        [
          { id: idOf(good), state: 'healthy', reason: '' },
          { id: idOf(slow), state: 'unhealthy', reason: '1 failed check: no answer within 2 s' },
        ],
      );
      const logged = gw.records().filter((r) => r.endpoint === idOf(slow) && r.state === 'unhealthy');
      assert.equal(logged.length, 1, 'logged once');
      assert.equal(logged[0]?.level, 50);
      assert.equal(
        logged[0]?.msg,
        `upstream endpoint ${idOf(slow)} of users is unhealthy: 1 failed check: no answer within 2 s`,
      );
      // The check carried the target's Host, as a request through the pool would.
      assert.equal(slow.seen.find((s) => s.url === '/healthz')?.headers.host, idOf(slow));
    } finally {
      for (const res of held) res.destroy();
      assert.equal(await gw.stop(), 0);
      await good.close();
      await slow.close();
    }
  });

  test('/admin/upstreams lists every pool of the config in force with each endpoint state, why and since when; the metrics agree', async () => {
    const good = await service();
    const sick = await service({ status: 500 });
    const deadPort = await freePort();
    // Held, so nothing else listens there: it accepts and hangs up, as a dying process does.
    const dead = await occupyPort(deadPort);
    const gw = await startGateway({
      upstreams: {
        users: {
          targets: [{ url: good.url, weight: 2 }, { url: sick.url }, { url: `http://127.0.0.1:${deadPort}` }],
          balance: 'round_robin',
          health_check: { interval: '1s', timeout: '500ms' },
        },
      },
      routes: [
        { path: '/u/*', upstream: 'users' },
        { path: '/direct/*', target: good.url },
      ],
      metrics: {},
    });
    try {
      const admin = await adminOf(gw);
      const reply = await request(`${admin}/admin/upstreams`);
      assert.equal(reply.status, 200);
      assert.match(String(reply.headers['content-type']), /^application\/json/);
      const { upstreams } = reply.json<{ upstreams: UpstreamJson[] }>();
      assert.deepEqual(
        upstreams
          .map(({ name, implicit, balance }) => ({ name, implicit, balance }))
          .sort((a, b) => (a.name < b.name ? -1 : 1)),
        [
          { name: good.url, implicit: true, balance: 'least_request' },
          { name: 'users', implicit: false, balance: 'round_robin' },
        ],
      );
      const users = upstreams.find((u) => u.name === 'users') as UpstreamJson;
      for (const e of users.endpoints) {
        assert.deepEqual(Object.keys(e).sort(), [
          'id',
          'in_flight',
          'priority',
          'reason',
          'since',
          'state',
          'weight',
        ]);
        assert.equal(new Date(e.since).toISOString(), e.since);
        assert.ok(Date.now() - Date.parse(e.since) < 60_000, e.since);
        assert.equal(e.in_flight, 0);
        assert.equal(e.priority, 0);
      }
      assert.deepEqual(
        users.endpoints.map(({ id, state, weight }) => ({ id, state, weight })),
        [
          { id: idOf(good), state: 'healthy', weight: 2 },
          { id: idOf(sick), state: 'unhealthy', weight: 1 },
          { id: `127.0.0.1:${deadPort}`, state: 'unhealthy', weight: 1 },
        ],
      );
      assert.equal(users.endpoints[0]?.reason, '');
      assert.equal(users.endpoints[1]?.reason, '1 failed check: status 500');
      assert.equal(users.endpoints[2]?.reason, '1 failed check: connection reset');
      // A pool with no health_check: usable from the start.
      const implicit = upstreams.find((u) => u.implicit) as UpstreamJson;
      assert.deepEqual(
        implicit.endpoints.map(({ id, state, reason }) => ({ id, state, reason })),
        [{ id: idOf(good), state: 'healthy', reason: '' }],
      );

      const samples = parseMetrics((await request(`${admin}/metrics`)).body);
      const healthy = (upstream: string, endpoint: string) =>
        samples.filter(
          (s) =>
            s.name === 'portico_upstream_endpoint_healthy' &&
            s.labels.upstream === upstream &&
            s.labels.endpoint === endpoint,
        );
      assert.deepEqual(
        healthy('users', idOf(good)).map((s) => s.value),
        [1],
      );
      assert.deepEqual(
        healthy('users', idOf(sick)).map((s) => s.value),
        [0],
      );
      assert.deepEqual(
        healthy('users', `127.0.0.1:${deadPort}`).map((s) => s.value),
        [0],
      );
      assert.deepEqual(
        healthy(good.url, idOf(good)).map((s) => s.value),
        [1],
      );
      const ejections = samples.filter((s) => s.name === 'portico_upstream_ejections_total');
      // Every endpoint of every pool, every reason, from 0.
      assert.equal(ejections.length, 4 * 4, JSON.stringify(ejections));
      assert.deepEqual([...new Set(ejections.map((s) => s.labels.reason))].sort(), [
        '5xx',
        'connect_failure',
        'reset',
        'timeout',
      ]);
      assert.equal(sum(samples, 'portico_upstream_ejections_total'), 0);
    } finally {
      assert.equal(await gw.stop(), 0);
      await good.close();
      await sick.close();
      dead.close();
    }
  });

  test('/admin/upstreams counts the requests in flight to each endpoint over all workers', async () => {
    const held: ServerResponse[] = [];
    const slow = await startUpstream((_req, res) => held.push(res));
    const gw = await startGateway({
      upstreams: { users: { targets: [{ url: slow.url }] } },
      routes: [{ path: '/*', upstream: 'users' }],
      server: { workers: 2 },
    });
    try {
      const admin = await adminOf(gw);
      const pending = [request(`${gw.url}/a`), request(`${gw.url}/b`), request(`${gw.url}/c`)];
      await until(() => held.length === 3, 5_000, 'the upstream holds 3 requests');
      assert.equal((await endpointOf(admin, 'users', idOf(slow))).in_flight, 3);
      for (const res of held) res.end('done');
      assert.deepEqual(
        (await Promise.all(pending)).map((r) => r.status),
        [200, 200, 200],
      );
      assert.equal((await endpointOf(admin, 'users', idOf(slow))).in_flight, 0);
    } finally {
      assert.equal(await gw.stop(), 0);
      await slow.close();
    }
  });

  test('a killed endpoint goes unhealthy within interval × unhealthy_threshold and is back within interval × healthy_threshold of its restart', async () => {
    const steady = await service();
    const victim = await service();
    const interval = 500;
    const timeout = 250;
    // Rounds start up to 10 % late (jitter); the rest is scheduling on a busy machine.
    const slack = 1_500;
    const gw = await startGateway({
      upstreams: {
        users: {
          targets: [{ url: steady.url }, { url: victim.url }],
          balance: 'round_robin',
          health_check: {
            interval: `${interval}ms`,
            timeout: `${timeout}ms`,
            unhealthy_threshold: 3,
            healthy_threshold: 2,
          },
        },
      },
      routes: [{ path: '/*', upstream: 'users' }],
    });
    let holder: Server | undefined;
    try {
      const admin = await adminOf(gw);
      const id = idOf(victim);
      assert.equal((await endpointOf(admin, 'users', id)).state, 'healthy');

      await victim.close();
      holder = await occupyPort(victim.port);
      const killedAt = Date.now();
      await gw.waitFor((r) => r.endpoint === id && r.state === 'unhealthy', 10_000);
      const down = Date.now() - killedAt;
      assert.ok(down <= interval * 1.1 * 3 + timeout + slack, `unhealthy after ${down} ms`);
      const view = await endpointOf(admin, 'users', id);
      assert.equal(view.state, 'unhealthy');
      assert.equal(view.reason, '3 failed checks: connection reset');
      assert.equal((await endpointOf(admin, 'users', idOf(steady))).state, 'healthy');

      await new Promise<void>((resolve) => holder?.close(() => resolve()));
      holder = undefined;
      await new Promise<void>((resolve) => victim.server.listen(victim.port, '127.0.0.1', resolve));
      const restartedAt = Date.now();
      const back = await gw.waitFor((r) => r.endpoint === id && r.state === 'healthy', 10_000);
      const up = Date.now() - restartedAt;
      assert.ok(up <= interval * 1.1 * 2 + slack, `healthy after ${up} ms`);
      assert.equal(back.level, 30);
      assert.equal(back.msg, `upstream endpoint ${id} of users is healthy again`);
      assert.equal((await endpointOf(admin, 'users', id)).state, 'healthy');
      const before = traffic(victim);
      await sendUntil(`${gw.url}/u/1`, () => traffic(victim) > before, 1_500, 'it receives traffic again');
      // Each transition logged once, not once per check.
      assert.equal(gw.records().filter((r) => r.endpoint === id && r.state === 'unhealthy').length, 1);
    } finally {
      holder?.close();
      assert.equal(await gw.stop(), 0);
      await steady.close();
      await victim.close();
    }
  });
});

describe('upstream health: TLS', () => {
  test("an https:// endpoint is checked over TLS with the target's name (SNI, certificate name, Host)", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portico-tls-'));
    const [key, cert] = [join(dir, 'key.pem'), join(dir, 'cert.pem')];
    // A certificate for localhost only: an IP target's check cannot verify it.
    await promisify(execFile)('openssl', [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost',
    ]);
    const checks: { servername: string | false | null; host: string | undefined }[] = [];
    const server = createHttpsServer({ key: await readFile(key), cert: await readFile(cert) }, (req, res) => {
      checks.push({ servername: (req.socket as TLSSocket).servername, host: req.headers.host });
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const gw = await startGateway(
      {
        upstreams: {
          named: { targets: [{ url: `https://localhost:${port}` }], health_check: { timeout: '2s' } },
          by_ip: { targets: [{ url: `https://127.0.0.1:${port}` }], health_check: { timeout: '2s' } },
        },
        routes: [
          { path: '/n/*', upstream: 'named' },
          { path: '/i/*', upstream: 'by_ip' },
        ],
      },
      { env: { NODE_EXTRA_CA_CERTS: cert } },
    );
    try {
      const admin = await adminOf(gw);
      const named = await endpointOf(admin, 'named', `127.0.0.1:${port}`);
      assert.equal(named.state, 'healthy', named.reason);
      assert.ok(checks.length > 0);
      assert.ok(
        checks.every((c) => c.servername === 'localhost' && c.host === `localhost:${port}`),
        JSON.stringify(checks),
      );
      const byIp = await endpointOf(admin, 'by_ip', `127.0.0.1:${port}`);
      assert.deepEqual(
        { state: byIp.state, reason: byIp.reason },
        { state: 'unhealthy', reason: '1 failed check: TLS certificate does not name the host' },
      );
    } finally {
      assert.equal(await gw.stop(), 0);
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('upstream health: traffic', () => {
  test('an endpoint whose /healthz answers 500 gets no traffic though its other paths answer', async () => {
    const good = await service();
    const sick = await service({ status: 500 });
    const gw = await startGateway({
      upstreams: {
        users: {
          targets: [{ url: sick.url }, { url: good.url }],
          balance: 'round_robin',
          health_check: { interval: '1s', timeout: '500ms' },
        },
      },
      routes: [{ path: '/*', upstream: 'users' }],
    });
    try {
      assert.deepEqual(await send(`${gw.url}/u/1`, 40), Array(40).fill(200));
      assert.equal(traffic(good), 40);
      assert.equal(traffic(sick), 0);
      // It does answer other paths: only its checks keep it out.
      assert.equal((await request(`${sick.url}/u/1`)).status, 200);
    } finally {
      assert.equal(await gw.stop(), 0);
      await good.close();
      await sick.close();
    }
  });

  test('start-up with a dead endpoint (its port held closed) sends it nothing from the first request on', async () => {
    const good = await service();
    const deadPort = await freePort();
    const dead = await occupyPort(deadPort);
    const gw = await startGateway({
      upstreams: {
        users: {
          // round_robin would send it every other request if it were used at all.
          targets: [{ url: `http://127.0.0.1:${deadPort}` }, { url: good.url }],
          balance: 'round_robin',
          health_check: { interval: '5s', timeout: '500ms' },
        },
      },
      routes: [{ path: '/*', upstream: 'users' }],
      server: { workers: 2 },
    });
    try {
      assert.deepEqual(await send(`${gw.url}/u/1`, 20), Array(20).fill(200));
      assert.equal(traffic(good), 20);
    } finally {
      assert.equal(await gw.stop(), 0);
      await good.close();
      dead.close();
    }
  });

  test("ejection from the workers' reports: the endpoint is out for base_ejection_time, comes back by itself, and a second ejection lasts twice as long", async () => {
    const a = await service();
    const b = await service();
    const failing = await startUpstream((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    const gw = await startGateway({
      upstreams: {
        users: {
          targets: [{ url: a.url }, { url: b.url }, { url: failing.url }],
          balance: 'round_robin',
          outlier_detection: { consecutive_failures: 3, base_ejection_time: '3s', max_ejection_percent: 50 },
        },
      },
      routes: [{ path: '/*', upstream: 'users' }],
      server: { workers: 2 },
      metrics: {},
    });
    try {
      const admin = await adminOf(gw);
      const id = idOf(failing);
      const ejected = gw.waitFor(
        (r) => r.endpoint === id && typeof r.msg === 'string' && r.msg.includes('ejected'),
      );
      // Each worker needs 3 failures in a row on it: at most 3 × workers reach it.
      const statuses = await send(`${gw.url}/u/1`, 30);
      const record = await ejected;
      assert.equal(record.level, 40);
      assert.equal(
        record.msg,
        `upstream endpoint ${id} of users ejected for 3 s after 3 5xx answers in a row`,
      );
      assert.ok(traffic(failing) <= 6, `${traffic(failing)} requests reached it`);
      assert.equal(statuses.filter((s) => s === 503).length, traffic(failing));
      const view = await endpointOf(admin, 'users', id);
      assert.equal(view.state, 'ejected');
      assert.equal(view.reason, 'ejected for 3 s after 3 5xx answers in a row');
      const samples = parseMetrics((await request(`${admin}/metrics`)).body);
      // The other worker's report of the same episode did not count.
      assert.equal(
        sum(samples, 'portico_upstream_ejections_total', { upstream: 'users', endpoint: id, reason: '5xx' }),
        1,
      );
      assert.equal(sum(samples, 'portico_upstream_endpoint_healthy', { upstream: 'users', endpoint: id }), 0);

      // Traffic meanwhile goes around it.
      const during = traffic(failing);
      assert.deepEqual(await send(`${gw.url}/u/2`, 10), Array(10).fill(200));
      assert.equal(traffic(failing), during);

      // Back by itself when the time ends (no active checks here).
      await gw.waitFor((r) => r.endpoint === id && r.state === 'healthy', 10_000);
      assert.equal((await endpointOf(admin, 'users', id)).state, 'healthy');
      const again = gw.waitFor(
        (r) => r.endpoint === id && typeof r.msg === 'string' && r.msg.includes('ejected for 6 s'),
        10_000,
      );
      await sendUntil(`${gw.url}/u/3`, () => traffic(failing) > during, 1_500, 'it gets traffic again');
      let second = false;
      void again.then(() => (second = true));
      await sendUntil(`${gw.url}/u/3`, () => second, 5_000, 'ejected a second time');
    } finally {
      assert.equal(await gw.stop(), 0);
      await a.close();
      await b.close();
      await failing.close();
    }
  });
});

describe('upstream health: reloads', () => {
  test('an ejected endpoint stays ejected across a reload that changes only an unrelated route', async () => {
    const a = await service();
    const failing = await startUpstream((_req, res) => {
      res.writeHead(502);
      res.end();
    });
    let file = '';
    const gw = await startGateway(
      {
        upstreams: {
          users: {
            targets: [{ url: a.url }, { url: failing.url }],
            balance: 'round_robin',
            outlier_detection: { consecutive_failures: 2, base_ejection_time: '60s' },
          },
        },
        routes: [{ path: '/*', upstream: 'users' }],
        reload: { watch: false },
      },
      {
        beforeStart: (f) => {
          file = f;
          return Promise.resolve();
        },
      },
    );
    try {
      const admin = await adminOf(gw);
      const id = idOf(failing);
      const ejected = gw.waitFor(
        (r) =>
          r.endpoint === id &&
          r.msg === `upstream endpoint ${id} of users ejected for 60 s after 2 5xx answers in a row`,
      );
      await send(`${gw.url}/x`, 6);
      await ejected;
      const before = await endpointOf(admin, 'users', id);
      assert.equal(before.state, 'ejected');

      const config = parse(await readFile(file, 'utf8')) as { routes: unknown[] };
      config.routes.unshift({ path: '/other/*', target: a.url });
      await writeFile(file, stringify(config));
      const reply = await request(`${admin}/admin/reload`, { method: 'POST' });
      assert.equal(reply.json().result, 'success', reply.body);
      assert.deepEqual(await endpointOf(admin, 'users', id), before);
      // The new workers got the ejection with their plan: none of their requests reach it.
      const seen = traffic(failing);
      assert.deepEqual(await send(`${gw.url}/y`, 10), Array(10).fill(200));
      assert.equal(traffic(failing), seen);
    } finally {
      assert.equal(await gw.stop(), 0);
      await a.close();
      await failing.close();
    }
  });

  test("an upstream whose settings did not change keeps its endpoints' state across a reload; a changed one starts fresh; a removed one leaves the metrics", async () => {
    const target = await service({ status: 500 });
    const other = await service();
    let file = '';
    const gw = await startGateway(
      {
        upstreams: {
          // Checked once an hour: only the first check (at start) decides its state.
          users: { targets: [{ url: target.url }], health_check: { interval: '1h', timeout: '1s' } },
        },
        routes: [{ path: '/u/*', upstream: 'users' }],
        reload: { watch: false },
        metrics: {},
      },
      {
        beforeStart: (f) => {
          file = f;
          return Promise.resolve();
        },
      },
    );
    type Written = {
      routes: unknown[];
      upstreams?: { users: { health_check: Record<string, unknown> } };
    };
    const reload = async (change: (config: Written) => void) => {
      const config = parse(await readFile(file, 'utf8')) as Written;
      change(config);
      await writeFile(file, stringify(config));
      const reply = await request(`${admin}/admin/reload`, { method: 'POST' });
      assert.equal(reply.json().result, 'success', reply.body);
    };
    const admin = await adminOf(gw);
    try {
      const id = idOf(target);
      const before = await endpointOf(admin, 'users', id);
      assert.equal(before.state, 'unhealthy');
      assert.equal(isCheck(target), 1);
      target.health.status = 200;

      // Only an unrelated route changed: the pool, its state and its (hourly) timer stay.
      await reload((config) => config.routes.push({ path: '/o/*', target: other.url }));
      assert.deepEqual(await endpointOf(admin, 'users', id), before);
      assert.equal(isCheck(target), 1, 'not checked again');

      // The upstream changed: a fresh pool, checked before the new config took over.
      await reload((config) => {
        if (config.upstreams) config.upstreams.users.health_check.healthy_threshold = 3;
      });
      const fresh = await endpointOf(admin, 'users', id);
      assert.equal(fresh.state, 'healthy');
      assert.equal(isCheck(target), 2);
      let samples = parseMetrics((await request(`${admin}/metrics`)).body);
      assert.equal(sum(samples, 'portico_upstream_endpoint_healthy', { upstream: 'users', endpoint: id }), 1);

      // Gone from the config: its series go too.
      await reload((config) => {
        delete config.upstreams;
        config.routes = [{ path: '/o/*', target: other.url }];
      });
      samples = parseMetrics((await request(`${admin}/metrics`)).body);
      assert.ok(
        !samples.some(
          (s) =>
            (s.name === 'portico_upstream_endpoint_healthy' ||
              s.name === 'portico_upstream_ejections_total') &&
            s.labels.upstream === 'users',
        ),
        `series of a stopped pool remain: ${JSON.stringify(samples.filter((s) => s.labels.upstream === 'users'))}`,
      );
      assert.deepEqual(
        (await upstreamsOf(admin)).map((u) => u.name),
        [other.url],
      );
    } finally {
      assert.equal(await gw.stop(), 0);
      await target.close();
      await other.close();
    }
  });
});
