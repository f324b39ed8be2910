import assert from 'node:assert/strict';
import { Agent, request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { runCli, startGateway, writeConfig } from './helpers/gateway.js';
import { parseMetrics, sum } from './helpers/metrics.js';
import { freePort, request } from './helpers/net.js';
import { type Blackhole, startBlackhole, startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Resilience through the running CLI, with real upstreams that fail on command: the bounds
 * of each try (`timeouts`), `server.max_body_size`, and retries.
 */

const closers: (() => Promise<void>)[] = [];
after(async () => {
  await Promise.all(closers.map((close) => close()));
});

async function upstream(handler?: Parameters<typeof startUpstream>[0]): Promise<Upstream> {
  const started = await startUpstream(handler);
  closers.push(() => started.close());
  return started;
}

async function blackhole(): Promise<Blackhole> {
  const hole = await startBlackhole();
  closers.push(() => hole.close());
  return hole;
}

/** What a client sees of a request: its status and body, or how the connection ended. */
function exchange(
  url: string,
  options: {
    method?: string;
    headers?: Record<string, string | number>;
    body?: Readable;
    timeoutMs?: number;
    /** Default: none, a connection of its own that the client asks to close. */
    agent?: Agent;
  } = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown>; cut: boolean; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers, agent: options.agent ?? false },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          body += c;
        });
        const done = (cut: boolean) =>
          resolve({ status: res.statusCode ?? 0, body, headers: res.headers, cut, ms: Date.now() - started });
        res.on('end', () => done(false));
        res.on('aborted', () => done(true));
        res.on('error', () => done(true));
      },
    );
    req.setTimeout(options.timeoutMs ?? 15_000, () => req.destroy(new Error('client timeout')));
    // A gateway that answers before the upload ends may stop reading it: the answer counts.
    let answered = false;
    req.once('response', () => {
      answered = true;
    });
    req.on('error', (err) => {
      if (!answered) reject(err);
    });
    if (options.body) options.body.pipe(req);
    else req.end();
  });
}

describe('timeouts', () => {
  test('connect to a blackhole: 504 within timeouts.connect, not the response timeout', async () => {
    const hole = await blackhole();
    const gw = await startGateway({
      upstreams: {
        hole: {
          targets: [{ url: `http://127.0.0.1:${hole.port}` }],
          timeouts: { connect: '400ms', response: '20s' },
          retry: { attempts: 0 },
        },
      },
      routes: [{ path: '/hole', upstream: 'hole', middleware: ['logging'] }],
    });
    try {
      const reply = await exchange(`${gw.url}/hole`, { headers: { 'x-request-id': 'blackholed-1' } });
      assert.equal(reply.status, 504);
      assert.deepEqual(JSON.parse(reply.body), { error: 'upstream timeout' });
      assert.equal(reply.headers['x-request-id'], 'blackholed-1');
      assert.ok(reply.ms < 400 + 1_000, `answered after ${reply.ms} ms`);
    } finally {
      await gw.stop();
    }
  });

  test('an upstream that sends its headers, then stalls: the client is cut after timeouts.idle', async () => {
    const stalling = await upstream((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000 });
      res.write('x'.repeat(10));
    });
    const silent = await upstream(() => {});
    const gw = await startGateway({
      upstreams: {
        stalling: { targets: [{ url: stalling.url }], timeouts: { idle: '500ms' } },
        silent: { targets: [{ url: silent.url }], timeouts: { idle: '500ms' }, retry: { attempts: 0 } },
      },
      routes: [
        { path: '/stalling', upstream: 'stalling' },
        { path: '/silent', upstream: 'silent' },
      ],
    });
    try {
      const cut = await exchange(`${gw.url}/stalling`);
      assert.equal(cut.status, 200);
      assert.equal(cut.cut, true, 'the client response was cut off');
      assert.equal(cut.body, 'x'.repeat(10));
      assert.ok(cut.ms < 500 + 1_000, `cut after ${cut.ms} ms`);
      // Idle before the headers: a 504, long before timeouts.response (30 s).
      const before = await exchange(`${gw.url}/silent`);
      assert.equal(before.status, 504);
      assert.deepEqual(JSON.parse(before.body), { error: 'upstream timeout' });
      assert.ok(before.ms < 500 + 1_000, `answered after ${before.ms} ms`);
    } finally {
      await gw.stop();
    }
  });

  test('a client that stalls its upload gets 408 after timeouts.idle, and the endpoint is not blamed', async () => {
    const echo = await upstream();
    const gw = await startGateway({
      upstreams: {
        echo: {
          targets: [{ url: echo.url }],
          timeouts: { idle: '500ms' },
          outlier_detection: { consecutive_failures: 1 },
        },
      },
      routes: [{ path: '/upload', upstream: 'echo' }],
    });
    try {
      const body = new Readable({ read() {} });
      body.push('x'.repeat(100));
      const reply = await exchange(`${gw.url}/upload`, {
        method: 'POST',
        headers: { 'content-length': 10_000 },
        body,
      });
      assert.equal(reply.status, 408);
      assert.deepEqual(JSON.parse(reply.body), { error: 'request timeout' });
      assert.ok(reply.ms < 500 + 1_000, `answered after ${reply.ms} ms`);
      // With consecutive_failures: 1, a failure of the endpoint's would have ejected it.
      assert.equal((await request(`${gw.url}/upload`, { method: 'POST', body: 'ok' })).status, 200);
    } finally {
      await gw.stop();
    }
  });

  test('a chunked upload held before connecting (max_body_size) that stalls: 408 after timeouts.idle too', async () => {
    const echo = await upstream();
    const gw = await startGateway({
      server: { max_body_size: '1MiB' },
      upstreams: { echo: { targets: [{ url: echo.url }], timeouts: { idle: '500ms' } } },
      routes: [{ path: '/upload', upstream: 'echo' }],
    });
    try {
      const body = new Readable({ read() {} });
      body.push('x'.repeat(100));
      const reply = await exchange(`${gw.url}/upload`, { method: 'POST', body });
      assert.equal(reply.status, 408);
      assert.deepEqual(JSON.parse(reply.body), { error: 'request timeout' });
      assert.ok(reply.ms < 500 + 1_000, `answered after ${reply.ms} ms`);
      assert.equal(echo.seen.length, 0, 'nothing was sent upstream');
    } finally {
      await gw.stop();
    }
  });

  test("the route's timeout overrides timeouts.response", async () => {
    const slow = await upstream((_req, res) => {
      setTimeout(() => res.end('late'), 800);
    });
    const gw = await startGateway({
      upstreams: {
        slow: { targets: [{ url: slow.url }], timeouts: { response: '300ms' }, retry: { attempts: 0 } },
      },
      routes: [
        { path: '/default', upstream: 'slow' },
        { path: '/patient', upstream: 'slow', timeout: '5s' },
      ],
    });
    try {
      const hurried = await exchange(`${gw.url}/default`);
      assert.equal(hurried.status, 504);
      assert.ok(hurried.ms < 800, `answered after ${hurried.ms} ms`);
      const patient = await exchange(`${gw.url}/patient`);
      assert.equal(patient.status, 200);
      assert.equal(patient.body, 'late');
    } finally {
      await gw.stop();
    }
  });
});

/** A body of `size` bytes in 64 KiB chunks, as a stream (sent chunked unless a length is given). */
function body(size: number): Readable {
  const chunk = Buffer.alloc(64 * 1024, 'b');
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= size) return this.push(null);
      const part = chunk.subarray(0, Math.min(chunk.length, size - sent));
      sent += part.length;
      this.push(part);
    },
  });
}

describe('max_body_size', () => {
  test('a 2 MB upload against a 1 MB limit: 413, and the upstream receives nothing (Content-Length and chunked)', async () => {
    const echo = await upstream();
    const gw = await startGateway({
      server: { max_body_size: '1MiB' },
      routes: [{ path: '/upload', target: echo.url, middleware: ['logging'] }],
    });
    // Kept alive, as HTTP/1.1 clients are: the 413 comes at once and the connection is reused.
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const MB = 1024 * 1024;
      const declared = await exchange(`${gw.url}/upload`, {
        method: 'POST',
        headers: { 'content-length': 2 * MB, 'x-request-id': 'too-large-1' },
        body: body(2 * MB),
        agent,
      });
      assert.equal(declared.status, 413);
      assert.deepEqual(JSON.parse(declared.body), { error: 'request body too large' });
      assert.equal(declared.headers['x-request-id'], 'too-large-1');
      const chunked = await exchange(`${gw.url}/upload`, { method: 'POST', body: body(2 * MB), agent });
      assert.equal(chunked.status, 413);
      assert.deepEqual(JSON.parse(chunked.body), { error: 'request body too large' });
      assert.equal(echo.seen.length, 0, 'the upstream saw a request');
      // Within the limit, both kinds arrive whole.
      const small = await exchange(`${gw.url}/upload`, { method: 'POST', body: body(MB) });
      assert.equal(small.status, 200);
      assert.equal((JSON.parse(small.body) as { bodyBytes: number }).bodyBytes, MB);
      const sized = await exchange(`${gw.url}/upload`, {
        method: 'POST',
        headers: { 'content-length': MB },
        body: body(MB),
      });
      assert.equal((JSON.parse(sized.body) as { bodyBytes: number }).bodyBytes, MB);
      assert.equal(echo.seen.length, 2);
    } finally {
      agent.destroy();
      await gw.stop();
    }
  });
});

describe('max_body_size, clients that close', () => {
  test('a client that asks to close gets its 413, not a reset, however much it still sends', async () => {
    const echo = await upstream();
    const gw = await startGateway({
      server: { max_body_size: '64KiB' },
      routes: [{ path: '/upload', target: echo.url }],
    });
    try {
      const MB = 1024 * 1024;
      for (let i = 0; i < 5; i++) {
        const declared = await exchange(`${gw.url}/upload`, {
          method: 'POST',
          headers: { 'content-length': 4 * MB, connection: 'close' },
          body: body(4 * MB),
        });
        assert.equal(declared.status, 413, `declared length, try ${i}`);
        assert.deepEqual(JSON.parse(declared.body), { error: 'request body too large' });
        const chunked = await exchange(`${gw.url}/upload`, {
          method: 'POST',
          headers: { connection: 'close' },
          body: body(4 * MB),
        });
        assert.equal(chunked.status, 413, `chunked, try ${i}`);
      }
      assert.equal(echo.seen.length, 0);
    } finally {
      await gw.stop();
    }
  });
});

/** Runs `count` requests, `concurrency` at a time; the replies in order. */
async function load<T>(count: number, concurrency: number, send: (i: number) => Promise<T>): Promise<T[]> {
  const replies: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      replies[i] = await send(i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return replies;
}

async function scrape(url: string) {
  return parseMetrics((await request(`${url}/metrics`)).body);
}

/** An upstream that answers `status` with its name in `x-upstream` (and the body size it read). */
function answering(name: string, status: number, headers: Record<string, string> = {}) {
  return upstream((_req, res, seen) => {
    res.writeHead(status, { 'content-type': 'application/json', 'x-upstream': name, ...headers });
    res.end(JSON.stringify({ bodyBytes: seen.bodyBytes }));
  });
}

describe('retries', () => {
  test('of 3 endpoints one refuses connections: 500 GETs and 200 POSTs all succeed, bodies intact', async () => {
    const [a, b] = await Promise.all([answering('a', 200), answering('b', 200)]);
    const refusing = await freePort();
    const gw = await startGateway({
      upstreams: {
        three: {
          targets: [{ url: `http://127.0.0.1:${refusing}` }, { url: a.url }, { url: b.url }],
          balance: 'round_robin',
          // Kept in rotation, so every third request meets it.
          outlier_detection: { consecutive_failures: 0 },
        },
      },
      routes: [{ path: '/three', upstream: 'three' }],
      metrics: { prometheus: { enabled: true } },
    });
    try {
      const gets = await load(500, 3, () => request(`${gw.url}/three`));
      assert.deepEqual(
        gets.map((r) => r.status).filter((s) => s !== 200),
        [],
      );
      const posts = await load(200, 3, (i) =>
        request(`${gw.url}/three`, { method: 'POST', body: 'p'.repeat(1000 + i) }),
      );
      posts.forEach((reply, i) => {
        assert.equal(reply.status, 200);
        assert.equal(reply.json<{ bodyBytes: number }>().bodyBytes, 1000 + i);
      });
      const retried = sum(await scrape(gw.url), 'portico_upstream_retries_total', {
        upstream: 'three',
        reason: 'connect_failure',
      });
      // Round robin sends every third first try to the refusing endpoint.
      assert.ok(retried >= 200, `${retried} retries`);
      assert.equal(a.seen.length + b.seen.length, 700);
    } finally {
      await gw.stop();
    }
  });

  test('one endpoint answers 503 to everything: GETs succeed via another, POSTs are not retried', async () => {
    const [bad, x, y] = await Promise.all([answering('bad', 503), answering('x', 200), answering('y', 200)]);
    const gw = await startGateway({
      upstreams: {
        flaky: {
          targets: [{ url: bad.url }, { url: x.url }, { url: y.url }],
          balance: 'round_robin',
          outlier_detection: { consecutive_failures: 0 },
          retry: { on: ['connect_failure', 'reset_before_response', 503] },
        },
      },
      routes: [{ path: '/flaky', upstream: 'flaky' }],
      metrics: { prometheus: { enabled: true } },
    });
    try {
      const gets = await load(90, 3, () => request(`${gw.url}/flaky`));
      assert.deepEqual(
        gets.map((r) => r.status).filter((s) => s !== 200),
        [],
      );
      const badGets = bad.seen.filter((r) => r.method === 'GET').length;
      assert.ok(badGets >= 20, `${badGets} GETs reached the 503 endpoint`);
      const posts = await load(90, 3, () => request(`${gw.url}/flaky`, { method: 'POST', body: 'once' }));
      const refused = posts.filter((r) => r.status === 503);
      const badPosts = bad.seen.filter((r) => r.method === 'POST').length;
      assert.ok(badPosts >= 20, `${badPosts} POSTs reached the 503 endpoint`);
      // Each POST the bad one answered reached the client as its 503: none was sent again.
      assert.equal(refused.length, badPosts);
      // One extra try per GET the bad one answered, none per POST.
      assert.equal(x.seen.length + y.seen.length + bad.seen.length, 180 + badGets);
      const samples = await scrape(gw.url);
      assert.equal(
        sum(samples, 'portico_upstream_retries_total', { upstream: 'flaky', reason: '503' }),
        badGets,
      );
    } finally {
      await gw.stop();
    }
  });

  test('a POST over retry.buffer is not replayed once its bytes were sent; a smaller one is, and the log line says so', async () => {
    // Both read the whole request, then cut the connection: a reset before the response.
    const cut = () => upstream((req) => req.socket.destroy());
    const [p, q] = await Promise.all([cut(), cut()]);
    const gw = await startGateway({
      upstreams: {
        cutting: {
          targets: [{ url: p.url }, { url: q.url }],
          outlier_detection: { consecutive_failures: 0 },
          retry: { methods: ['POST'], on: ['reset_before_response'], buffer: '1KiB' },
        },
      },
      routes: [{ path: '/cutting', upstream: 'cutting', middleware: ['logging'] }],
    });
    try {
      const seen = () => p.seen.length + q.seen.length;
      const small = await request(`${gw.url}/cutting`, {
        method: 'POST',
        body: 's'.repeat(512),
        headers: { 'x-request-id': 'small-post' },
      });
      assert.equal(small.status, 502);
      assert.equal(seen(), 2, 'the small POST was sent again');
      const ids = [...p.seen, ...q.seen].map((r) => r.headers['x-request-id']);
      assert.deepEqual(ids, ['small-post', 'small-post']);
      // The second try went to the other endpoint.
      assert.equal(p.seen.length, 1);
      const line = await gw.waitFor((r) => r.request_id === 'small-post' && r.msg === 'request');
      assert.equal(line.tries, 2);
      const tries = line.upstream_tries as string[];
      assert.equal(tries.length, 2);
      assert.match(tries[0] as string, /^127\.0\.0\.1:\d+ reset_before_response$/);
      assert.match(tries[1] as string, /^127\.0\.0\.1:\d+ reset$/);
      const large = await request(`${gw.url}/cutting`, { method: 'POST', body: 'L'.repeat(64 * 1024) });
      assert.equal(large.status, 502);
      assert.equal(seen(), 3, 'the large POST was sent once');
    } finally {
      await gw.stop();
    }
  });

  test('never retried after a byte of the response reached the client', async () => {
    const midBody = () =>
      upstream((req, res) => {
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 1000 });
        res.write('partial');
        setTimeout(() => req.socket.destroy(), 50);
      });
    const [p, q] = await Promise.all([midBody(), midBody()]);
    const gw = await startGateway({
      upstreams: {
        dying: {
          targets: [{ url: p.url }, { url: q.url }],
          retry: { attempts: 3, on: ['connect_failure', 'reset_before_response', 'timeout', 502] },
        },
      },
      routes: [{ path: '/dying', upstream: 'dying' }],
    });
    try {
      const reply = await exchange(`${gw.url}/dying`);
      assert.equal(reply.status, 200);
      assert.equal(reply.cut, true);
      assert.equal(reply.body, 'partial');
      assert.equal(p.seen.length + q.seen.length, 1);
    } finally {
      await gw.stop();
    }
  });

  test('budget: when every endpoint fails, tries stay within (1 + budget) × requests + 3', async () => {
    const failing = () =>
      upstream((_req, res) => {
        setTimeout(() => {
          res.writeHead(503, { 'content-type': 'text/plain' });
          res.end('down');
        }, 1_000);
      });
    const [p, q] = await Promise.all([failing(), failing()]);
    const gw = await startGateway({
      upstreams: {
        down: {
          targets: [{ url: p.url }, { url: q.url }],
          outlier_detection: { consecutive_failures: 0 },
          retry: { attempts: 2, on: [503], budget: '20%' },
        },
      },
      routes: [{ path: '/down', upstream: 'down' }],
      metrics: { prometheus: { enabled: true } },
    });
    try {
      const requests = 50;
      const replies = await load(requests, requests, () => request(`${gw.url}/down`));
      assert.ok(replies.every((r) => r.status === 503));
      const tries = p.seen.length + q.seen.length;
      assert.ok(tries > requests, 'some requests were retried');
      // Without the budget: 3 × 50.
      assert.ok(tries <= 1.2 * requests + 3, `${tries} tries for ${requests} requests`);
      const samples = await scrape(gw.url);
      const exhausted = sum(samples, 'portico_upstream_retry_budget_exhausted_total', { upstream: 'down' });
      assert.ok(exhausted > 0);
      // The admin view counts the same retries and refusals, over all workers.
      const admin = (await gw.waitFor((r) => r.msg === 'admin listener ready')).url as string;
      const listed = (await request(`${admin}/admin/upstreams`)).json<{
        upstreams: { name: string; retry: { retries: number; budget_exhausted: number; in_retry: number } }[];
      }>().upstreams;
      assert.deepEqual(listed.find((u) => u.name === 'down')?.retry, {
        retries: tries - requests,
        budget_exhausted: exhausted,
        in_retry: 0,
      });
    } finally {
      await gw.stop();
    }
  });

  test('a 503 with Retry-After is retried after it, up to backoff.max', async () => {
    const arrivals: number[] = [];
    const recovering = await upstream((_req, res) => {
      arrivals.push(Date.now());
      if (arrivals.length === 1) {
        res.writeHead(503, { 'retry-after': '5' });
        res.end();
        return;
      }
      res.end('back');
    });
    const gw = await startGateway({
      upstreams: {
        recovering: {
          targets: [{ url: recovering.url }],
          retry: { on: [503], backoff: { base: '10ms', max: '400ms' } },
        },
      },
      routes: [{ path: '/recovering', upstream: 'recovering' }],
    });
    try {
      const reply = await request(`${gw.url}/recovering`);
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'back');
      const gap = (arrivals[1] as number) - (arrivals[0] as number);
      // Retry-After (5 s) capped at max; the jittered backoff alone would be under 10 ms.
      assert.ok(gap >= 350 && gap < 2_000, `retried after ${gap} ms`);
    } finally {
      await gw.stop();
    }
  });

  test('a retry asks the circuit breaker again: one the failed try opened answers it, the upstream sees nothing more', async () => {
    const failing = await answering('failing', 503);
    const gw = await startGateway({
      upstreams: {
        tripping: {
          targets: [{ url: failing.url }],
          retry: { on: [503] },
          circuit_breaker: { error_ratio: 0.5, min_requests: 1 },
        },
      },
      routes: [{ path: '/tripping', upstream: 'tripping' }],
    });
    try {
      const reply = await request(`${gw.url}/tripping`);
      assert.equal(reply.status, 503);
      assert.deepEqual(reply.json(), { error: 'upstream circuit open' });
      assert.ok(Number(reply.headers['retry-after']) >= 1);
      assert.equal(failing.seen.length, 1);
    } finally {
      await gw.stop();
    }
  });

  test('portico check refuses contradictory retry settings, with key paths', async () => {
    const file = await writeConfig({
      upstreams: {
        u: {
          targets: [{ url: 'http://127.0.0.1:9' }],
          retry: { methods: ['GET', 'POST'], on: ['connect_failure'], backoff: { base: '1s', max: '100ms' } },
        },
        v: {
          targets: [{ url: 'http://127.0.0.1:9' }],
          retry: { methods: ['POST'], on: [409] },
        },
      },
      routes: [
        { path: '/u', upstream: 'u' },
        { path: '/v', upstream: 'v' },
      ],
    });
    const { code, stderr } = await runCli(['check', '--config', file]);
    assert.equal(code, 1);
    assert.match(stderr, /upstreams\.u\.retry\.backoff\.max: must be at least backoff\.base/);
    assert.match(
      stderr,
      /upstreams\.u\.retry\.methods\[1\]: POST is not idempotent and retry\.on lists only connect_failure/,
    );
    assert.match(
      stderr,
      /upstreams\.v\.retry\.on: retrying POST on 409 replays a request the upstream answered/,
    );
  });
});
