import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { after, describe, test } from 'node:test';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { freePort, request, sleep, UPGRADE_HEADERS } from './helpers/net.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';
import { stringify } from 'yaml';

/*
 * Upstream pools through the running CLI, with real upstreams: how requests spread over a
 * pool's endpoints, what the workers do with endpoints that fail on real traffic (passive
 * detection, panic), and the 503 when none may be used. A local ejection lasts 2 s before the
 * primary's view rules again; the checks that rely on one finish well within that.
 */

interface Named {
  name: string;
  upstream: Upstream;
  /** Changed by a test to change how it answers from then on. */
  behaviour: { status: number; delayMs: number; dead: boolean };
  /** Requests that reached it while `dead` (each one's connection cut at once). */
  deadHits: number;
  /** Upgrades it accepted. */
  upgrades: number;
  /** TCP connections it accepted. */
  connections: number;
}

const started: Named[] = [];
after(async () => {
  await Promise.all(started.map((n) => n.upstream.close()));
});

/**
 * An upstream that names itself in `x-upstream` and answers as its `behaviour` says. "Dead"
 * cuts every request that reaches it, over a kept-alive connection or a new one, so each
 * attempt the gateway makes after the death is counted, not lost to a refused connect.
 */
async function named(name: string, behaviour: Partial<Named['behaviour']> = {}): Promise<Named> {
  const self: Named = {
    name,
    upstream: undefined as unknown as Upstream,
    behaviour: { status: 200, delayMs: 0, dead: false, ...behaviour },
    deadHits: 0,
    upgrades: 0,
    connections: 0,
  };
  self.upstream = await startUpstream((req, res) => {
    if (self.behaviour.dead) {
      self.deadHits++;
      req.socket.destroy();
      return;
    }
    const answer = () => {
      res.writeHead(self.behaviour.status, { 'content-type': 'text/plain', 'x-upstream': name });
      res.end(name);
    };
    if (self.behaviour.delayMs > 0) setTimeout(answer, self.behaviour.delayMs);
    else answer();
  });
  self.upstream.server.on('connection', () => {
    self.connections++;
  });
  self.upstream.server.on('upgrade', (req, socket: Socket) => {
    self.upgrades++;
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nupgrade: ${req.headers.upgrade}\r\nconnection: Upgrade\r\nx-upstream: ${name}\r\n\r\n`,
    );
    socket.pipe(socket);
  });
  started.push(self);
  return self;
}

/** Requests per upstream name (from `x-upstream`), and the statuses of the rest. */
async function spread(
  urls: string[],
  options: { concurrency?: number; headers?: (i: number) => Record<string, string> } = {},
): Promise<{ by: Record<string, number>; statuses: number[]; order: string[] }> {
  const by: Record<string, number> = {};
  const statuses: number[] = [];
  const order: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < urls.length) {
      const i = next++;
      const reply = await request(urls[i] as string, { headers: options.headers?.(i) ?? {} });
      statuses.push(reply.status);
      const name = reply.headers['x-upstream'];
      order[i] = typeof name === 'string' ? name : `status ${reply.status}`;
      if (typeof name === 'string') by[name] = (by[name] ?? 0) + 1;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency ?? 1 }, worker));
  return { by, statuses, order };
}

/** A WebSocket handshake: the open socket, or the HTTP answer that refused it. */
function upgrade(
  url: string,
): Promise<{ socket: Socket } | { status: number; headers: Record<string, unknown>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { agent: false, headers: UPGRADE_HEADERS });
    req.on('upgrade', (_res, socket) => {
      socket.write('ping');
      socket.once('data', () => resolve({ socket }));
    });
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const repeat = (url: string, n: number) => Array.from({ length: n }, () => url);
const target = (n: Named, weight?: number) => ({ url: n.upstream.url, ...(weight ? { weight } : {}) });

describe('balancing', () => {
  let gw: RunningGateway;
  let a: Named, b: Named, c: Named, slow: Named, fast1: Named, fast2: Named;
  after(async () => {
    await gw?.stop();
  });

  test('round_robin with weights 1,1,2 sends 25/25/50 % of 400 requests, and counts them per endpoint', async () => {
    [a, b, c] = await Promise.all([named('a'), named('b'), named('c')]);
    [slow, fast1, fast2] = await Promise.all([
      named('slow', { delayMs: 150 }),
      named('fast1'),
      named('fast2'),
    ]);
    const adminPort = await freePort();
    gw = await startGateway(
      {
        upstreams: {
          weighted: { targets: [target(a), target(b), target(c, 2)], balance: 'round_robin' },
          // The slow one first: a gateway that always took the first target would send it all.
          busy: { targets: [target(slow), target(fast1), target(fast2)], balance: 'least_request' },
          sticky: { targets: [target(a), target(b), target(c)], balance: 'hash', hash_on: 'header:X-User' },
          sockets: { targets: [target(a), target(b), target(c)], balance: 'round_robin' },
          crumbs: { targets: [target(a), target(b), target(c)], balance: 'hash', hash_on: 'cookie:session' },
          byIp: { targets: [target(a), target(b), target(c)], balance: 'hash' },
        },
        routes: [
          { path: '/weighted', upstream: 'weighted' },
          { path: '/busy', upstream: 'busy' },
          { path: '/sticky', upstream: 'sticky' },
          { path: '/ws', upstream: 'sockets' },
          { path: '/crumbs', upstream: 'crumbs' },
          { path: '/by-ip', upstream: 'byIp' },
        ],
        // The client IP of /by-ip requests comes from X-Forwarded-For.
        server: { trusted_proxies: ['127.0.0.1'] },
        admin: { port: adminPort },
        metrics: { prometheus: {} },
      },
      { workers: 1 },
    );
    const { by, statuses } = await spread(repeat(`${gw.url}/weighted`, 400), { concurrency: 4 });
    assert.ok(
      statuses.every((s) => s === 200),
      JSON.stringify(statuses),
    );
    for (const [name, share] of [
      ['a', 25],
      ['b', 25],
      ['c', 50],
    ] as const) {
      assert.ok(Math.abs(((by[name] ?? 0) / 400) * 100 - share) <= 2, `${name}: ${JSON.stringify(by)}`);
    }
    const samples = parseMetrics((await request(`http://127.0.0.1:${adminPort}/metrics`)).body);
    for (const n of [a, b, c]) {
      const endpoint = `127.0.0.1:${n.upstream.port}`;
      assert.equal(
        sum(samples, 'portico_upstream_requests_total', {
          upstream: 'weighted',
          endpoint,
          status_class: '2xx',
        }),
        by[n.name],
        endpoint,
      );
    }
  });

  test('least_request sends fewer requests to an endpoint that answers slowly', async () => {
    const { by, statuses } = await spread(repeat(`${gw.url}/busy`, 120), { concurrency: 6 });
    assert.ok(statuses.every((s) => s === 200));
    const slowCount = by.slow ?? 0;
    assert.ok(slowCount < (by.fast1 ?? 0) && slowCount < (by.fast2 ?? 0), JSON.stringify(by));
  });

  test('hash on a header: the same key always reaches the same endpoint, and keys spread', async () => {
    const keys = Array.from({ length: 30 }, (_, i) => `user-${i}`);
    // Every key three times, interleaved with the others.
    const rounds = [...keys, ...keys, ...keys];
    const { order } = await spread(repeat(`${gw.url}/sticky`, rounds.length), {
      concurrency: 3,
      headers: (i) => ({ 'x-user': rounds[i] as string }),
    });
    const placed = new Map<string, Set<string>>();
    rounds.forEach((key, i) => {
      const set = placed.get(key) ?? new Set();
      set.add(order[i] as string);
      placed.set(key, set);
    });
    for (const [key, set] of placed) assert.equal(set.size, 1, `${key} reached ${[...set].join(', ')}`);
    const used = new Set([...placed.values()].map((s) => [...s][0]));
    assert.ok(used.size >= 2 && !used.has(undefined), [...used].join(', '));
  });

  for (const [what, path, header] of [
    ['a cookie', '/crumbs', (key: string) => ({ cookie: `theme=dark; session=${key}` })],
    ['the client IP (hash_on default)', '/by-ip', (key: string) => ({ 'x-forwarded-for': key })],
  ] as const) {
    test(`hash on ${what}: the same key always reaches the same endpoint, and keys spread`, async () => {
      const keys = Array.from({ length: 30 }, (_, i) => (path === '/by-ip' ? `10.0.0.${i + 1}` : `s${i}`));
      const rounds = [...keys, ...keys];
      const { order } = await spread(repeat(`${gw.url}${path}`, rounds.length), {
        headers: (i) => header(rounds[i] as string),
      });
      keys.forEach((key, i) => assert.equal(order[i + keys.length], order[i], key));
      assert.ok(new Set(order).size >= 2 && order.every((o) => !o.startsWith('status')), order.join(','));
    });
  }

  test('WebSocket upgrades are spread over the endpoints too', async () => {
    const before = [a, b, c].map((n) => n.upgrades);
    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 6; i++) {
        const opened = await upgrade(`${gw.url}/ws`);
        assert.ok('socket' in opened, JSON.stringify(opened));
        sockets.push(opened.socket);
      }
    } finally {
      for (const s of sockets) s.destroy();
    }
    assert.deepEqual(
      [a, b, c].map((n, i) => n.upgrades - (before[i] as number)),
      [2, 2, 2],
    );
  });
});

describe('passive detection', () => {
  for (const workers of [1, 2]) {
    test(`kill one of 3 under steady load (${workers} worker${workers === 1 ? '' : 's'}): it gets at most consecutive_failures attempts per worker, then none`, async () => {
      const [doomed, x, y] = await Promise.all([named('doomed'), named('x'), named('y')]);
      const gw = await startGateway(
        {
          upstreams: {
            three: {
              // The doomed one first: a gateway that always took the first target would send it all.
              targets: [target(doomed), target(x), target(y)],
              outlier_detection: { consecutive_failures: 3 },
            },
          },
          routes: [{ path: '/three', upstream: 'three' }],
        },
        { workers },
      );
      try {
        let running = true;
        const statuses: number[] = [];
        const load = (async () => {
          while (running) statuses.push((await request(`${gw.url}/three`)).status);
        })();
        await sleep(300);
        assert.ok(doomed.upstream.seen.length > 0, 'the doomed endpoint took traffic before');
        const okBefore = statuses.filter((s) => s === 200).length;
        doomed.behaviour.dead = true;
        // Well within the 2 s a local ejection lasts on its own.
        await sleep(1_200);
        running = false;
        await load;
        assert.ok(doomed.deadHits >= 1, 'the kill was noticed by traffic');
        assert.ok(doomed.deadHits <= 3 * workers, `${doomed.deadHits} attempts after the kill`);
        // The default retry (reset_before_response, GET) took each cut request elsewhere.
        assert.deepEqual(
          statuses.filter((s) => s !== 200),
          [],
        );
        assert.ok(statuses.filter((s) => s === 200).length > okBefore + 20, 'the others kept serving');
      } finally {
        await gw.stop();
      }
    });
  }

  test('all endpoints unusable: an immediate JSON 503 with Retry-After and X-Request-Id', async () => {
    const [p, q] = await Promise.all([named('p', { status: 500 }), named('q', { status: 500 })]);
    const gw = await startGateway({
      upstreams: {
        broken: {
          targets: [target(p), target(q)],
          balance: 'round_robin',
          outlier_detection: { consecutive_failures: 1, max_ejection_percent: 100 },
          panic_threshold: '0%',
        },
      },
      routes: [{ path: '/broken', upstream: 'broken' }],
    });
    try {
      // One 500 from each: each is then ejected by this worker.
      assert.equal((await request(`${gw.url}/broken`)).status, 500);
      assert.equal((await request(`${gw.url}/broken`)).status, 500);
      const reply = await request(`${gw.url}/broken`, { headers: { 'x-request-id': 'no-upstream-1' } });
      assert.equal(reply.status, 503);
      assert.deepEqual(reply.json(), { error: 'no healthy upstream' });
      assert.match(String(reply.headers['content-type']), /^application\/json/);
      assert.equal(reply.headers['retry-after'], '1');
      assert.equal(reply.headers['x-request-id'], 'no-upstream-1');
      assert.equal(p.upstream.seen.length + q.upstream.seen.length, 2);
      // A WebSocket handshake gets the same answer, on its raw socket.
      const refused = await upgrade(`${gw.url}/broken`);
      assert.ok('status' in refused, 'upgraded');
      assert.equal(refused.status, 503);
      assert.deepEqual(JSON.parse(refused.body), { error: 'no healthy upstream' });
      assert.equal(refused.headers['retry-after'], '1');
      assert.equal(p.upgrades + q.upgrades, 0);
      const outliers = await gw.waitFor(
        (r) => r.msg === 'upstream endpoint failing: reported to the primary',
      );
      assert.equal(outliers.upstream, 'broken');
    } finally {
      await gw.stop();
    }
  });

  test('panic threshold: with too few usable endpoints, requests go to all of them rather than fail', async () => {
    const [bad1, bad2, good] = await Promise.all([
      named('bad1', { status: 503 }),
      named('bad2', { status: 503 }),
      named('good'),
    ]);
    const pool = (panic: string) => ({
      targets: [target(bad1), target(bad2), target(good)],
      balance: 'round_robin',
      outlier_detection: { consecutive_failures: 1, max_ejection_percent: 100 },
      panic_threshold: panic,
    });
    const gw = await startGateway({
      upstreams: { panicky: pool('50%'), strict: pool('0%') },
      routes: [
        { path: '/panicky', upstream: 'panicky' },
        { path: '/strict', upstream: 'strict' },
      ],
    });
    try {
      const badSeen = (prefix: string) =>
        [bad1, bad2].reduce((n, u) => n + u.upstream.seen.filter((s) => s.url === prefix).length, 0);
      const strict = await spread(repeat(`${gw.url}/strict`, 12));
      // Each bad one failed once and was ejected; the good one took the rest.
      assert.equal(badSeen('/strict'), 2);
      assert.equal(strict.by.good, 10);
      const panicky = await spread(repeat(`${gw.url}/panicky`, 12));
      // 1 of 3 usable is below 50 %: all three share the load, errors and all.
      assert.ok(badSeen('/panicky') >= 6, `${badSeen('/panicky')} of 12 to the bad ones`);
      assert.ok((panicky.by.good ?? 0) >= 3, JSON.stringify(panicky.by));
    } finally {
      await gw.stop();
    }
  });
});

describe('reload', () => {
  test('an unchanged upstream keeps its pool (no new upstream connections); a hash pool that lost an endpoint moves only its keys', async () => {
    const [a, b, c] = await Promise.all([named('ra'), named('rb'), named('rc')]);
    const sticky = (targets: Named[]) => ({
      targets: targets.map((n) => target(n)),
      balance: 'hash',
      hash_on: 'header:X-User',
    });
    const adminPort = await freePort();
    const config = (stickyTargets: Named[]) => ({
      upstreams: {
        kept: { targets: [target(a), target(b)], balance: 'round_robin' },
        sticky: sticky(stickyTargets),
      },
      routes: [
        { path: '/kept', upstream: 'kept' },
        { path: '/sticky', upstream: 'sticky' },
      ],
      reload: { watch: false },
      admin: { port: adminPort },
    });
    let file = '';
    const gw = await startGateway(config([a, b, c]), {
      workers: 1,
      beforeStart: (f) => {
        file = f;
        return Promise.resolve();
      },
    });
    try {
      const keys = Array.from({ length: 60 }, (_, i) => `user-${i}`);
      const place = async () => {
        const { order } = await spread(repeat(`${gw.url}/sticky`, keys.length), {
          headers: (i) => ({ 'x-user': keys[i] as string }),
        });
        return order;
      };
      const before = await place();
      assert.ok(new Set(before).size === 3, `keys on ${[...new Set(before)].join(', ')}`);
      const kept1 = await spread(repeat(`${gw.url}/kept`, 10));
      assert.deepEqual(kept1.by, { ra: 5, rb: 5 });
      const connections = [a.connections, b.connections];

      await writeFile(
        file,
        stringify({ ...config([a, b]), server: { port: gw.port, host: '127.0.0.1', workers: 1 } }),
      );
      const reply = await request(`http://127.0.0.1:${adminPort}/admin/reload`, { method: 'POST' });
      assert.equal(reply.status, 200, reply.body);
      assert.equal(reply.json().result, 'success');

      const kept2 = await spread(repeat(`${gw.url}/kept`, 10));
      assert.deepEqual(kept2.by, { ra: 5, rb: 5 });
      assert.deepEqual([a.connections, b.connections], connections, 'the kept pool opened new connections');
      const after = await place();
      keys.forEach((key, i) => {
        if (before[i] !== 'rc') assert.equal(after[i], before[i], `${key} moved from ${before[i]}`);
        else assert.notEqual(after[i], 'rc');
      });
    } finally {
      await gw.stop();
    }
  });
});
