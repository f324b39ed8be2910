import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { freePort, type Reply, request, sleep, UPGRADE_HEADERS, upgradeRequest } from './helpers/net.js';
import { type Blackhole, startBlackhole, startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * An upstream's `circuit_breaker` and `server.max_connections` through the running CLI, with
 * real upstreams told how to answer. One worker, so its per-worker state is the whole view.
 */

const gateways: RunningGateway[] = [];
const upstreams: (Upstream | Blackhole)[] = [];
after(async () => {
  await Promise.all(gateways.map((g) => g.stop()));
  await Promise.all(upstreams.map((u) => u.close()));
});

/** An upstream answering `behaviour.status`; with `hold`, it keeps every answer until `release()`. */
async function controlled() {
  const behaviour = { status: 200, hold: false };
  const held: (() => void)[] = [];
  const upstream = await startUpstream((_req, res) => {
    const answer = () => {
      res.writeHead(behaviour.status, { 'content-type': 'text/plain' });
      res.end('upstream');
    };
    if (behaviour.hold) held.push(answer);
    else answer();
  });
  upstreams.push(upstream);
  return {
    upstream,
    behaviour,
    held,
    release() {
      for (const answer of held.splice(0)) answer();
    },
  };
}

async function gateway(config: Record<string, unknown>, adminPort?: number): Promise<RunningGateway> {
  const gw = await startGateway(
    adminPort === undefined ? config : { ...config, admin: { port: adminPort }, metrics: { prometheus: {} } },
    { workers: 1 },
  );
  gateways.push(gw);
  return gw;
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000) {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await sleep(20);
  }
}

function assertGatewayAnswer(reply: Reply, status: number, error: string): void {
  assert.equal(reply.status, status, reply.body);
  assert.match(String(reply.headers['content-type']), /application\/json/);
  assert.deepEqual(reply.json(), { error });
  assert.ok(reply.headers['x-request-id'], 'x-request-id');
}

/** The upstream's breaker as `/admin/upstreams` shows it (state and trips: the wait moves). */
async function breakerOf(adminPort: number, name: string) {
  const listed = (await request(`http://127.0.0.1:${adminPort}/admin/upstreams`)).json<{
    upstreams: { name: string; circuit_breaker: { state: string; trips: number } }[];
  }>().upstreams;
  const breaker = listed.find((u) => u.name === name)?.circuit_breaker;
  return breaker && { state: breaker.state, trips: breaker.trips };
}

async function metricsOf(adminPort: number) {
  return parseMetrics((await request(`http://127.0.0.1:${adminPort}/metrics`)).body);
}

describe('circuit_breaker limits', () => {
  test('max_requests: with 10 slow requests in flight the 11th gets a 503 at once', async () => {
    const slow = await controlled();
    const adminPort = await freePort();
    const gw = await gateway(
      {
        upstreams: { slow: { targets: [{ url: slow.upstream.url }], circuit_breaker: { max_requests: 10 } } },
        routes: [{ path: '/slow', upstream: 'slow' }],
      },
      adminPort,
    );
    slow.behaviour.hold = true;
    const inFlight = Array.from({ length: 10 }, () => request(`${gw.url}/slow`));
    await until(() => slow.held.length === 10, '10 requests held by the upstream');

    // Answered while the 10 are still held: the limit answers, not the upstream.
    const eleventh = await request(`${gw.url}/slow`);
    assertGatewayAnswer(eleventh, 503, 'upstream request limit reached');
    assert.equal(eleventh.headers['retry-after'], '1');
    assert.equal(slow.upstream.seen.length, 10, 'the 11th never reached the upstream');
    assert.equal(slow.held.length, 10);

    slow.behaviour.hold = false;
    slow.release();
    for (const reply of await Promise.all(inFlight)) assert.equal(reply.status, 200);
    // The slots are free again.
    assert.equal((await request(`${gw.url}/slow`)).status, 200);
    const samples = await metricsOf(adminPort);
    assert.equal(
      sum(samples, 'portico_upstream_overflow_total', { upstream: 'slow', limit: 'max_requests' }),
      1,
    );
  });

  test('max_pending: with 2 requests waiting for a connection the next gets a 503 at once', async () => {
    const hole = await startBlackhole();
    upstreams.push(hole);
    const adminPort = await freePort();
    const gw = await gateway(
      {
        upstreams: {
          hole: {
            targets: [{ url: hole.url }],
            outlier_detection: { consecutive_failures: 0 },
            circuit_breaker: { max_pending: 2 },
          },
        },
        routes: [{ path: '/hole', upstream: 'hole', timeout: '3s' }],
      },
      adminPort,
    );
    const url = `${gw.url}/hole`;
    // Their connects never complete; the route timeout ends them with a 504.
    const waiting = [request(url), request(url)];
    let refused: Reply | undefined;
    // A try that got in before both were pending waits too: the client gives up, which frees it.
    await until(async () => {
      refused = await request(url, { timeoutMs: 500 }).catch(() => undefined);
      return refused !== undefined;
    }, 'a refusal once two requests are pending');
    assertGatewayAnswer(refused as Reply, 503, 'upstream request limit reached');
    for (const reply of await Promise.all(waiting)) assert.equal(reply.status, 504);
    const samples = await metricsOf(adminPort);
    assert.ok(
      sum(samples, 'portico_upstream_overflow_total', { upstream: 'hole', limit: 'max_pending' }) >= 1,
    );
  });

  test('portico check: min_requests 0 with an error ratio, and a max_pending that can never apply', async () => {
    const { spawnSync } = await import('node:child_process');
    const { CLI, writeConfig } = await import('./helpers/gateway.js');
    const file = await writeConfig({
      upstreams: {
        users: {
          targets: [{ url: 'http://127.0.0.1:9' }],
          circuit_breaker: { error_ratio: 0.5, min_requests: 0, max_requests: 5, max_pending: 5 },
        },
      },
      routes: [{ path: '/u', upstream: 'users' }],
    });
    const run = spawnSync(process.execPath, [CLI, 'check', '--config', file], { encoding: 'utf8' });
    assert.equal(run.status, 1, run.stderr);
    assert.match(run.stderr, /upstreams\.users\.circuit_breaker\.min_requests/);
    assert.match(run.stderr, /upstreams\.users\.circuit_breaker\.max_pending/);
  });
});

describe('server.max_connections', () => {
  test('a request on a connection beyond the limit gets a JSON 503 and the connection closes', async () => {
    const ok = await controlled();
    const gw = await gateway({
      server: { max_connections: 2 },
      routes: [{ path: '/ok', target: ok.upstream.url }],
    });
    const agents = [0, 1, 2].map(() => new Agent({ keepAlive: true, maxSockets: 1 }));
    const on = (agent: Agent) =>
      new Promise<Reply>((resolve, reject) => {
        const req = httpRequest(`${gw.url}/ok`, { agent }, (res) => {
          let body = '';
          res.on('data', (c: Buffer) => (body += c.toString()));
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              headers: res.headers,
              body,
              json: <T>() => JSON.parse(body) as T,
            }),
          );
        });
        req.on('error', reject);
        req.end();
      });
    try {
      // Two kept-alive connections hold the two places.
      assert.equal((await on(agents[0] as Agent)).status, 200);
      assert.equal((await on(agents[1] as Agent)).status, 200);
      const third = await on(agents[2] as Agent);
      assertGatewayAnswer(third, 503, 'too many connections');
      assert.equal(third.headers.connection, 'close');
      // The first two go on being served.
      assert.equal((await on(agents[0] as Agent)).status, 200);
      // One leaves: a new connection gets its place.
      agents[0]?.destroy();
      await until(async () => (await request(`${gw.url}/ok`)).status === 200, 'a freed place');
    } finally {
      for (const agent of agents) agent.destroy();
    }
  });
});

describe('circuit_breaker error ratio', () => {
  test('trips on the ratio after min_requests, refuses without touching the upstream, probes, reopens doubled, closes', async () => {
    const flaky = await controlled();
    const adminPort = await freePort();
    const gw = await gateway(
      {
        upstreams: {
          flaky: {
            targets: [{ url: flaky.upstream.url }],
            // Passive ejection would keep the endpoint out on its own; this is about the breaker.
            outlier_detection: { consecutive_failures: 0 },
            circuit_breaker: {
              error_ratio: 0.5,
              min_requests: 10,
              window: '30s',
              open_for: '1s',
              half_open_requests: 2,
            },
          },
        },
        routes: [{ path: '/flaky', upstream: 'flaky' }],
      },
      adminPort,
    );
    const url = `${gw.url}/flaky`;
    for (let i = 0; i < 4; i++) assert.equal((await request(url)).status, 200);

    // 100 % failures from now on: 5 of 9 is over the ratio, but 9 is under min_requests.
    flaky.behaviour.status = 500;
    for (let i = 0; i < 5; i++) assert.equal((await request(url)).status, 500, `failure ${i}`);
    assert.equal((await request(url)).status, 500, 'the 10th exchange still goes');
    assert.equal(flaky.upstream.seen.length, 10);

    // 6 of 10 failed, with 10 seen: open.
    const refused = await request(url);
    assertGatewayAnswer(refused, 503, 'upstream circuit open');
    const retryAfter = Number(refused.headers['retry-after']);
    assert.equal(retryAfter, 1);
    for (let i = 0; i < 20; i++) assert.equal((await request(url)).status, 503);
    assert.equal(flaky.upstream.seen.length, 10, 'nothing reached the upstream while open');
    assert.deepEqual(await breakerOf(adminPort, 'flaky'), { state: 'open', trips: 1 });
    let samples = await metricsOf(adminPort);
    assert.equal(sum(samples, 'portico_circuit_breaker_state', { upstream: 'flaky' }), 2);
    assert.equal(sum(samples, 'portico_circuit_breaker_trips_total', { upstream: 'flaky' }), 1);
    const opened = gw.records().filter((r) => r.msg === 'circuit breaker opened');
    assert.equal(opened.length, 1, 'logged once');
    assert.equal(opened[0]?.open_for_ms, 1000);

    // Half-open after open_for: a probe goes through, fails, and the breaker opens for twice as long.
    await gw.waitFor((r) => r.msg === 'circuit breaker half-open', 5_000);
    assert.equal((await request(url)).status, 500, 'the probe reached the upstream');
    assert.equal(flaky.upstream.seen.length, 11);
    const reopened = await gw.waitFor(
      (r) => r.msg === 'circuit breaker opened' && r.trips_in_a_row === 2,
      2_000,
    );
    assert.equal(reopened.open_for_ms, 2000);
    const again = await request(url);
    assertGatewayAnswer(again, 503, 'upstream circuit open');
    assert.equal(again.headers['retry-after'], '2');
    assert.equal(flaky.upstream.seen.length, 11);

    // Recovered: the probes succeed and close it; requests flow again.
    flaky.behaviour.status = 200;
    await until(
      () => gw.records().filter((r) => r.msg === 'circuit breaker half-open').length === 2,
      'second half-open',
      5_000,
    );
    assert.equal((await request(url)).status, 200);
    assert.equal((await request(url)).status, 200);
    await gw.waitFor((r) => r.msg === 'circuit breaker closed', 2_000);
    for (let i = 0; i < 5; i++) assert.equal((await request(url)).status, 200);
    assert.equal(flaky.upstream.seen.length, 18);
    samples = await metricsOf(adminPort);
    assert.equal(sum(samples, 'portico_circuit_breaker_state', { upstream: 'flaky' }), 0);
    assert.equal(sum(samples, 'portico_circuit_breaker_trips_total', { upstream: 'flaky' }), 2);
    assert.deepEqual(await breakerOf(adminPort, 'flaky'), { state: 'closed', trips: 2 });
  });

  test('half-open lets only half_open_requests probes through at once', async () => {
    const flaky = await controlled();
    const gw = await gateway({
      upstreams: {
        flaky: {
          targets: [{ url: flaky.upstream.url }],
          outlier_detection: { consecutive_failures: 0 },
          circuit_breaker: { error_ratio: 1, min_requests: 2, open_for: '500ms', half_open_requests: 2 },
        },
      },
      routes: [{ path: '/flaky', upstream: 'flaky' }],
    });
    const url = `${gw.url}/flaky`;
    flaky.behaviour.status = 502;
    assert.equal((await request(url)).status, 502);
    assert.equal((await request(url)).status, 502);
    assert.equal((await request(url)).status, 503);
    await gw.waitFor((r) => r.msg === 'circuit breaker half-open', 5_000);
    flaky.behaviour = Object.assign(flaky.behaviour, { status: 200, hold: true });
    const probes = [request(url), request(url)];
    await until(() => flaky.held.length === 2, 'two probes at the upstream');
    const third = await request(url);
    assertGatewayAnswer(third, 503, 'upstream circuit open');
    assert.equal(flaky.held.length, 2);
    flaky.behaviour.hold = false;
    flaky.release();
    for (const reply of await Promise.all(probes)) assert.equal(reply.status, 200);
    await gw.waitFor((r) => r.msg === 'circuit breaker closed', 2_000);
    assert.equal((await request(url)).status, 200);
  });

  test('an open breaker refuses a WebSocket upgrade too: a JSON 503, nothing reaches the upstream', async () => {
    const flaky = await controlled();
    let upgrades = 0;
    flaky.upstream.server.on('upgrade', (_req, socket: Socket) => {
      upgrades++;
      socket.end('HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\n\r\n');
    });
    const gw = await gateway({
      upstreams: {
        flaky: {
          targets: [{ url: flaky.upstream.url }],
          outlier_detection: { consecutive_failures: 0 },
          circuit_breaker: { error_ratio: 1, min_requests: 2, open_for: '30s' },
        },
      },
      routes: [{ path: '/flaky', upstream: 'flaky' }],
    });
    const url = `${gw.url}/flaky`;
    // Closed: an upgrade goes through.
    const first = await upgradeRequest(url);
    first.socket.destroy();
    assert.equal(upgrades, 1);
    flaky.behaviour.status = 502;
    assert.equal((await request(url)).status, 502);
    assert.equal((await request(url)).status, 502);
    const refused = await request(url, { headers: UPGRADE_HEADERS });
    assertGatewayAnswer(refused, 503, 'upstream circuit open');
    assert.equal(upgrades, 1, 'the refused upgrade never reached the upstream');
  });

  test('the merged breaker gauge is the worst worker state, not a sum over workers', async () => {
    const flaky = await controlled();
    const adminPort = await freePort();
    const gw = await startGateway(
      {
        upstreams: {
          flaky: {
            targets: [{ url: flaky.upstream.url }],
            outlier_detection: { consecutive_failures: 0 },
            circuit_breaker: { error_ratio: 1, min_requests: 2, open_for: '30s' },
          },
        },
        routes: [{ path: '/flaky', upstream: 'flaky' }],
        admin: { port: adminPort },
        metrics: { prometheus: {} },
      },
      { workers: 2 },
    );
    gateways.push(gw);
    flaky.behaviour.status = 502;
    // Each worker opens its own breaker after 2 failures; new connections spread over both.
    await until(async () => {
      await request(`${gw.url}/flaky`);
      const listed = gw.records().filter((r) => r.msg === 'circuit breaker opened');
      return new Set(listed.map((r) => r.pid)).size === 2;
    }, 'both workers opened their breaker');
    const samples = await metricsOf(adminPort);
    assert.equal(sum(samples, 'portico_circuit_breaker_state', { upstream: 'flaky' }), 2);
  });
});
