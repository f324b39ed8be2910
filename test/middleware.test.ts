import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { request } from './helpers/net.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const ENTRY = fileURLToPath(new URL('./fixtures/custom-entry.js', import.meta.url));

describe('user-registered middleware in cluster mode', () => {
  let gw: RunningGateway;
  let upstream: Upstream;
  before(async () => {
    upstream = await startUpstream();
    gw = await startGateway(
      {
        routes: [
          { path: '/users/:id', target: upstream.url, middleware: ['first', 'logging', 'second', 'context'] },
          { path: '/files/*', target: upstream.url, middleware: ['context'] },
          { path: '/boom', target: upstream.url, middleware: ['boom'] },
          {
            path: '/custom-auth',
            target: upstream.url,
            middleware: ['auth', 'echo-claims'],
            auth: { type: 'static-tokens', options: { tokens: { 'let-me-in': 'zoe' } } },
          },
        ],
      },
      { entry: ENTRY, workers: 2 },
    );
  });
  after(async () => {
    await gw?.stop();
    await upstream?.close();
  });

  test('runs in every worker, in the listed order, with params in the context', async () => {
    const pids = new Set<string>();
    for (let i = 0; i < 20; i++) {
      const reply = await request(`${gw.url}/users/j%C3%BCrgen`);
      assert.equal(reply.status, 200);
      pids.add(String(reply.headers['x-worker-pid']));
      const headers = reply.json<{ headers: Record<string, string> }>().headers;
      assert.equal(headers['x-order'], 'first,second');
      assert.deepEqual(JSON.parse(headers['x-ctx'] as string), {
        route: '/users/:id',
        params: { id: 'jürgen' },
        wildcard: '',
        clientIp: '127.0.0.1',
      });
    }
    assert.equal(pids.size, 2, 'both workers served requests with the registered middleware');
  });

  test('the wildcard remainder is in the context', async () => {
    const reply = await request(`${gw.url}/files/a/b%20c.txt`);
    const ctx = JSON.parse(reply.json<{ headers: Record<string, string> }>().headers['x-ctx'] as string) as {
      wildcard: string;
    };
    assert.equal(ctx.wildcard, 'a/b c.txt');
  });

  test('a middleware that throws gives a JSON 500 and the worker survives', async () => {
    const reply = await request(`${gw.url}/boom`);
    assert.equal(reply.status, 500);
    assert.deepEqual(reply.json(), { error: 'internal gateway error' });
    assert.equal((await request(`${gw.url}/users/1`)).status, 200);
    assert.equal(gw.records().filter((r) => r.msg === 'worker died; respawning').length, 0);
  });

  test('a verifier registered through the library API is selected by auth.type; claims reach later middleware', async () => {
    const ok = await request(`${gw.url}/custom-auth`, { headers: { authorization: 'Bearer let-me-in' } });
    assert.equal(ok.status, 200);
    assert.deepEqual(
      JSON.parse(ok.json<{ headers: Record<string, string> }>().headers['x-claims'] as string),
      { sub: 'zoe' },
    );
    const denied = await request(`${gw.url}/custom-auth`, { headers: { authorization: 'Bearer nope' } });
    assert.equal(denied.status, 401);
    assert.deepEqual(denied.json(), { error: 'invalid token' });
  });

  test('logging writes one JSON line per request with the documented fields', async () => {
    const reply = await request(`${gw.url}/users/77?token=secret`, {
      headers: { 'x-request-id': 'log-test-1' },
    });
    assert.equal(reply.status, 200);
    const line = await gw.waitFor((r) => r.request_id === 'log-test-1');
    assert.equal(line.msg, 'request');
    assert.equal(line.method, 'GET');
    assert.equal(line.path, '/users/77');
    assert.equal(line.route, '/users/:id');
    assert.equal(line.status, 200);
    assert.equal(typeof line.duration_ms, 'number');
    assert.equal(gw.records().filter((r) => r.request_id === 'log-test-1').length, 1);
    assert.ok(!gw.lines.some((l) => l.includes('token=secret')), 'query strings are not logged');
  });
});

describe('registration errors', () => {
  test('a route naming an unregistered middleware is rejected at start-up', async () => {
    const gw = await startGateway(
      { routes: [{ path: '/a', target: 'http://127.0.0.1:1', middleware: ['nope'] }] },
      { waitReady: false },
    );
    assert.equal(await gw.exited, 1);
    assert.match(gw.stderr(), /routes\[0\]\.middleware\[0\]: unknown middleware "nope"/);
  });
});
