import assert from 'node:assert/strict';
import { type IncomingHttpHeaders, request as httpRequest } from 'node:http';
import type { Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { SignJWT } from 'jose';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { rawRequest, request } from './helpers/net.js';
import { type OtlpReceiver, startOtlpReceiver } from './helpers/otlp-receiver.js';
import { type SeenRequest, startUpstream, type Upstream } from './helpers/upstream.js';

/*
 * Request handling under hostile input (issue 11, items 6–9 and 13): bodies are never
 * silently dropped, headers the gateway owns cannot be stripped or forged by the client,
 * malformed requests get the gateway's JSON answers, and unmatched requests are logged.
 */

const SECRET = 'a-test-secret-that-is-at-least-32-bytes-long';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/;
/** A valid W3C context the client made up; the gateway must not pass it on as its own. */
const CLIENT_TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

/** Every header the gateway sets on the upstream request, each named in the client's `Connection`. */
const GATEWAY_OWNED = [
  'x-request-id',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
  'x-user-id',
  'traceparent',
  'tracestate',
];
/** What the client sends under those names, hoping some of it reaches the upstream. */
const FORGED: Record<string, string> = {
  'x-request-id': 'client-chosen-id',
  'x-forwarded-for': '6.6.6.6',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'evil.example',
  'x-real-ip': '6.6.6.6',
  'x-user-id': 'mallory',
  traceparent: CLIENT_TRACEPARENT,
  tracestate: 'evil=1',
};

function token(sub: string): Promise<string> {
  return new SignJWT({ sub })
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setIssuer('portico-test')
    .setAudience('api')
    .setExpirationTime('5m')
    .sign(new TextEncoder().encode(SECRET));
}

/** Asserts the upstream saw the gateway's values for every gateway-owned header. */
function assertGatewayOwned(seen: IncomingHttpHeaders, port: number): void {
  assert.match(String(seen['x-request-id']), UUID, 'x-request-id');
  assert.equal(seen['x-forwarded-for'], '127.0.0.1');
  assert.equal(seen['x-forwarded-proto'], 'http');
  assert.equal(seen['x-forwarded-host'], `127.0.0.1:${port}`);
  assert.equal(seen['x-real-ip'], '127.0.0.1');
  assert.equal(seen['x-user-id'], 'alice');
  assert.match(String(seen.traceparent), TRACEPARENT, 'traceparent');
  assert.notEqual(seen.traceparent, CLIENT_TRACEPARENT);
  // The client's trace context was nominated away: the gateway's new trace has no state.
  assert.equal(seen.tracestate, undefined);
}

/** The status line, headers and body of a raw HTTP/1.1 response. */
function parseRaw(raw: string): { status: number; headers: Record<string, string>; body: string } {
  const end = raw.indexOf('\r\n\r\n');
  assert.notEqual(end, -1, `no complete response head: ${JSON.stringify(raw)}`);
  const [statusLine, ...lines] = raw.slice(0, end).split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim();
  }
  return { status: Number(statusLine?.split(' ')[1]), headers, body: raw.slice(end + 4) };
}

/** Asserts a raw answer is the gateway's JSON error with a request id. */
function assertGatewayAnswer(raw: string, status: number, error: string): string {
  const reply = parseRaw(raw);
  assert.equal(reply.status, status, raw);
  assert.match(reply.headers['content-type'] ?? '', /^application\/json/, raw);
  assert.deepEqual(JSON.parse(reply.body), { error }, raw);
  const id = reply.headers['x-request-id'] ?? '';
  assert.match(id, UUID, `x-request-id in ${raw}`);
  return id;
}

/**
 * `count` header fields in all, `content-length: 5` the last of them, then a 5-byte body.
 * The filler fields are `x-fill-<n>`, or all `x` when `short` (to stay under max_header_size).
 */
function manyHeaders(path: string, count: number, short = false): string {
  let fill = '';
  for (let i = 0; i < count - 3; i++) fill += short ? 'x: 1\r\n' : `x-fill-${i}: 1\r\n`;
  return `POST ${path} HTTP/1.1\r\nhost: x\r\nconnection: close\r\n${fill}content-length: 5\r\n\r\nhello`;
}

let receiver: OtlpReceiver;
let echo: Upstream;
let gw: RunningGateway;

before(async () => {
  receiver = await startOtlpReceiver();
  echo = await startUpstream();
  // The upgrade handshake's upstream reports the headers it received in a response header.
  echo.server.on('upgrade', (req, socket: Socket) => {
    const seen = Buffer.from(JSON.stringify(req.headers)).toString('base64');
    socket.end(
      `HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nx-seen: ${seen}\r\n\r\n`,
    );
  });
  gw = await startGateway({
    routes: [
      { path: '/open/*', target: echo.url, middleware: ['logging'] },
      { path: '/get-only', methods: ['GET'], target: echo.url, middleware: ['logging'] },
      { path: '/claims/*', target: echo.url, middleware: ['tracing', 'auth', 'logging'] },
    ],
    auth: {
      type: 'jwt',
      secret: SECRET,
      issuer: 'portico-test',
      audience: 'api',
      forward_claims: { sub: 'X-User-Id' },
    },
    otel: { endpoint: receiver.endpoint, service_name: 'portico-test', export_interval: '100ms' },
  });
});

after(async () => {
  await gw?.stop();
  await echo?.close();
  await receiver?.close();
});

/** The upstream's record of the request the gateway forwarded with this request id. */
function seenWithId(id: string): SeenRequest {
  const seen = echo.seen.find((s) => s.headers['x-request-id'] === id);
  assert.ok(seen, `the upstream saw request ${id}`);
  return seen;
}

describe('request bodies are never dropped silently (item 6)', () => {
  test('a chunked body survives Connection: transfer-encoding', async () => {
    const raw = await rawRequest(
      gw.port,
      'POST /open/te HTTP/1.1\r\nhost: x\r\nx-request-id: te-nominated\r\ntransfer-encoding: chunked\r\nconnection: close, transfer-encoding\r\n\r\n5\r\nhello\r\n0\r\n\r\n',
    );
    assert.equal(parseRaw(raw).status, 200, raw);
    assert.equal(seenWithId('te-nominated').bodyBytes, 5);
  });

  test('a sized body survives Connection: content-length', async () => {
    const raw = await rawRequest(
      gw.port,
      'POST /open/cl HTTP/1.1\r\nhost: x\r\nx-request-id: cl-nominated\r\ncontent-length: 5\r\nconnection: close, content-length\r\n\r\nhello',
    );
    assert.equal(parseRaw(raw).status, 200, raw);
    assert.equal(seenWithId('cl-nominated').bodyBytes, 5);
  });

  test('up to server.max_headers (100) fields are forwarded whole; one more is a 431', async () => {
    const atLimit = await rawRequest(gw.port, manyHeaders('/open/at-limit', 100));
    assert.equal(parseRaw(atLimit).status, 200, atLimit);
    const seen = echo.seen.find((s) => s.url === '/open/at-limit');
    assert.equal(seen?.bodyBytes, 5);
    assert.equal(Object.keys(seen?.headers ?? {}).filter((name) => name.startsWith('x-fill-')).length, 97);

    const before = echo.seen.length;
    const over = await rawRequest(gw.port, manyHeaders('/open/over-limit', 101));
    assertGatewayAnswer(over, 431, 'request header fields too large');
    assert.equal(echo.seen.length, before, 'nothing was forwarded');
  });

  test('more fields than Node keeps (2000) is a 431, not a forward without Content-Length', async () => {
    const before = echo.seen.length;
    const raw = await rawRequest(gw.port, manyHeaders('/open/truncated', 2100, true));
    assertGatewayAnswer(raw, 431, 'request header fields too large');
    assert.equal(echo.seen.length, before, 'nothing was forwarded');
  });
});

describe('a client cannot strip or forge the headers the gateway sets (items 7 and 9)', () => {
  test('every gateway-owned header reaches the upstream with the gateway value, whatever Connection names', async () => {
    const reply = await request(`${gw.url}/claims/owned`, {
      headers: {
        ...FORGED,
        authorization: `Bearer ${await token('alice')}`,
        connection: `keep-alive, ${GATEWAY_OWNED.join(', ')}`,
      },
    });
    assert.equal(reply.status, 200, reply.body);
    const seen = reply.json<{ headers: IncomingHttpHeaders }>().headers;
    assertGatewayOwned(seen, gw.port);
    assert.equal(
      seen['x-request-id'],
      reply.headers['x-request-id'],
      'the id sent upstream is the one returned',
    );
  });

  test('the same holds for a WebSocket upgrade', async () => {
    const auth = `Bearer ${await token('alice')}`;
    const seen = await new Promise<IncomingHttpHeaders>((resolve, reject) => {
      const req = httpRequest(`${gw.url}/claims/ws`, {
        agent: false,
        headers: {
          ...FORGED,
          authorization: auth,
          connection: `Upgrade, ${GATEWAY_OWNED.join(', ')}`,
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        },
      });
      req.on('upgrade', (res, socket) => {
        socket.destroy();
        resolve(
          JSON.parse(Buffer.from(String(res.headers['x-seen']), 'base64').toString()) as IncomingHttpHeaders,
        );
      });
      req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    assertGatewayOwned(seen, gw.port);
  });

  test('X-Real-IP from an untrusted client is replaced by the client address', async () => {
    const reply = await request(`${gw.url}/open/real-ip`, { headers: { 'x-real-ip': '6.6.6.6' } });
    assert.equal(reply.json<{ headers: IncomingHttpHeaders }>().headers['x-real-ip'], '127.0.0.1');
  });
});

describe('requests the gateway refuses get its JSON answer with a request id (item 8)', () => {
  test('two Host headers are a 400', async () => {
    const before = echo.seen.length;
    const raw = await rawRequest(
      gw.port,
      'GET /open/x HTTP/1.1\r\nhost: a\r\nHost: b\r\nconnection: close\r\n\r\n',
    );
    assertGatewayAnswer(raw, 400, 'a request needs exactly one Host header');
    assert.equal(echo.seen.length, before, 'nothing was forwarded');
  });

  test('an HTTP/1.1 request without Host is a JSON 400', async () => {
    const raw = await rawRequest(gw.port, 'GET /open/x HTTP/1.1\r\nconnection: close\r\n\r\n');
    assertGatewayAnswer(raw, 400, 'a request needs exactly one Host header');
  });

  test('CONNECT is a JSON 405, not a closed connection', async () => {
    const raw = await rawRequest(
      gw.port,
      'CONNECT example.com:443 HTTP/1.1\r\nhost: example.com:443\r\n\r\n',
    );
    assertGatewayAnswer(raw, 405, 'method not allowed');
    assert.equal(parseRaw(raw).headers.allow, '', 'an empty Allow: no method is served on a tunnel target');
  });

  test('a refused WebSocket upgrade is answered and its connection closed', async () => {
    const raw = await rawRequest(
      gw.port,
      'GET /claims/ws HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-version: 13\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n',
    );
    assertGatewayAnswer(raw, 401, 'missing token');
  });

  test("requests Node's parser rejects get the error table's answer with a request id, and an access-log line", async () => {
    const malformed = await rawRequest(gw.port, 'GET /open/x HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n');
    const huge = await rawRequest(
      gw.port,
      `GET /open/x HTTP/1.1\r\nhost: x\r\nx-big: ${'a'.repeat(40_000)}\r\n\r\n`,
    );
    for (const [id, status] of [
      [assertGatewayAnswer(malformed, 400, 'bad request'), 400],
      [assertGatewayAnswer(huge, 431, 'request header fields too large'), 431],
    ] as const) {
      // Logged like a request no route took; the parser never got its method or path.
      const line = await gw.waitFor((r) => r.request_id === id);
      assert.equal(line.msg, 'request');
      assert.equal(line.route, '(unmatched)');
      assert.equal(line.status, status);
      assert.equal(line.client_ip, '127.0.0.1');
      assert.equal(typeof line.reason, 'string');
    }
  });
});

describe('unmatched requests are answered and logged like any other (item 13)', () => {
  test('404, 405 and 400 carry X-Request-Id and write one access-log line under (unmatched)', async () => {
    const cases = [
      { path: '/nowhere?token=secret', method: 'GET', status: 404, logged: '/nowhere' },
      { path: '/get-only', method: 'DELETE', status: 405, logged: '/get-only' },
      { path: '/open/%zz', method: 'GET', status: 400, logged: '/open/%zz' },
    ];
    for (const c of cases) {
      const reply = await request(`${gw.url}${c.path}`, { method: c.method });
      assert.equal(reply.status, c.status);
      const id = String(reply.headers['x-request-id']);
      assert.match(id, UUID);
      const line = await gw.waitFor((r) => r.request_id === id);
      assert.equal(line.route, '(unmatched)');
      assert.equal(line.msg, 'request');
      assert.equal(line.method, c.method);
      assert.equal(line.path, c.logged, 'the query string is never logged');
      assert.equal(line.status, c.status);
      assert.equal(typeof line.duration_ms, 'number');
      assert.equal(line.client_ip, '127.0.0.1');
    }
  });
});

describe('behind a trusted proxy', () => {
  let trusting: RunningGateway;
  before(async () => {
    trusting = await startGateway({
      server: { trusted_proxies: ['127.0.0.1'] },
      routes: [
        { path: '/limited', target: echo.url, middleware: ['ratelimit'] },
        { path: '/echo/*', target: echo.url },
      ],
      rate_limit: { key: 'ip', requests_per_second: 0.001, burst: 1 },
    });
  });
  after(async () => {
    await trusting?.stop();
  });

  test('an X-Forwarded-For entry with a port keys the rate limit by its IP alone (item 9)', async () => {
    for (const [first, second] of [
      ['1.2.3.4:1111', '1.2.3.4:2222'],
      ['[2001:db8::1]:1111', '[2001:db8::1]:2222'],
    ]) {
      const one = await request(`${trusting.url}/limited`, { headers: { 'x-forwarded-for': first } });
      assert.equal(one.status, 200, `${first}: ${one.body}`);
      const two = await request(`${trusting.url}/limited`, { headers: { 'x-forwarded-for': second } });
      assert.equal(two.status, 429, `${second} shares the bucket of ${first}`);
    }
  });

  test('X-Real-IP is the client address taken from a trusted proxy, not what was sent', async () => {
    const reply = await request(`${trusting.url}/echo/real-ip`, {
      headers: { 'x-forwarded-for': '5.6.7.8:4444', 'x-real-ip': '6.6.6.6' },
    });
    assert.equal(reply.json<{ headers: IncomingHttpHeaders }>().headers['x-real-ip'], '5.6.7.8');
  });

  test('without logging on any route, unmatched and unparsable requests are answered with an id but not logged', async () => {
    const reply = await request(`${trusting.url}/nowhere`);
    assert.equal(reply.status, 404);
    assert.match(String(reply.headers['x-request-id']), UUID);
    const malformed = await rawRequest(trusting.port, 'GET / HTTP/1.1\r\nhost: x\r\nno colon here\r\n\r\n');
    assertGatewayAnswer(malformed, 400, 'bad request');
    // Stopping flushes every log line the workers wrote.
    await trusting.stop();
    assert.deepEqual(
      trusting.records().filter((r) => r.route === '(unmatched)'),
      [],
    );
  });
});
