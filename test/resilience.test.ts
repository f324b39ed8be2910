import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { Readable } from 'node:stream';
import { after, describe, test } from 'node:test';
import { startGateway } from './helpers/gateway.js';
import { type Blackhole, request, startBlackhole } from './helpers/net.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

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
  } = {},
): Promise<{ status: number; body: string; headers: Record<string, unknown>; cut: boolean; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      url,
      { method: options.method ?? 'GET', headers: options.headers, agent: false },
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
    try {
      const MB = 1024 * 1024;
      const declared = await exchange(`${gw.url}/upload`, {
        method: 'POST',
        headers: { 'content-length': 2 * MB, 'x-request-id': 'too-large-1' },
        body: body(2 * MB),
      });
      assert.equal(declared.status, 413);
      assert.deepEqual(JSON.parse(declared.body), { error: 'request body too large' });
      assert.equal(declared.headers['x-request-id'], 'too-large-1');
      const chunked = await exchange(`${gw.url}/upload`, { method: 'POST', body: body(2 * MB) });
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
      await gw.stop();
    }
  });
});
