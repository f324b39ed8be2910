import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { type RunningGateway, startGateway } from './helpers/gateway.js';
import { freePort, request } from './helpers/net.js';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from './helpers/otlp-receiver.js';
import { startUpstream, type Upstream } from './helpers/upstream.js';

const ENTRY = fileURLToPath(new URL('./fixtures/custom-entry.js', import.meta.url));
const INTERNAL = 1;
const SERVER = 2;
const CLIENT = 3;
const ERROR = 2;
const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$/;

/** A TCP listener that only counts connections: where a stray exporter would connect. */
async function startTrap(): Promise<{ port: number; connections(): number; close(): Promise<void> }> {
  let count = 0;
  const server: Server = createServer((socket) => {
    count++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    connections: () => count,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

function upstreamTraceparent(upstream: Upstream, requestId: string): { traceId: string; parentId: string } {
  const seen = upstream.seen.find((s) => s.headers['x-request-id'] === requestId);
  assert.ok(seen, `upstream saw ${requestId}`);
  const match = TRACEPARENT.exec(String(seen.headers.traceparent));
  assert.ok(match, `upstream traceparent: ${String(seen.headers.traceparent)}`);
  return { traceId: match[1] as string, parentId: match[2] as string };
}

const spansOf = (spans: ReceivedSpan[], traceId: string) => spans.filter((s) => s.traceId === traceId);

describe('tracing over OTLP gRPC', () => {
  let receiver: OtlpReceiver;
  let upstream: Upstream;
  let trap: Awaited<ReturnType<typeof startTrap>>;
  let gw: RunningGateway;

  before(async () => {
    receiver = await startOtlpReceiver();
    upstream = await startUpstream();
    trap = await startTrap();
    gw = await startGateway(
      {
        routes: [
          { path: '/users/:id', target: upstream.url, middleware: ['tracing', 'logging'] },
          { path: '/down', target: 'http://127.0.0.1:1', middleware: ['tracing'] },
          { path: '/pooled', upstream: 'pooled', middleware: ['tracing'] },
          { path: '/user-span', target: upstream.url, middleware: ['tracing', 'user-span'] },
        ],
        upstreams: { pooled: { targets: [{ url: upstream.url }] } },
        otel: { endpoint: receiver.endpoint, service_name: 'portico-test', export_interval: '100ms' },
      },
      {
        workers: 2,
        entry: ENTRY,
        // If the SDK started anything configured from the environment (OTLP metrics or logs
        // exporters), it would connect here; the trace exporter uses `otel.endpoint` only.
        env: {
          OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${trap.port}`,
          OTEL_METRIC_EXPORT_INTERVAL: '200',
          OTEL_BLRP_SCHEDULE_DELAY: '200',
        },
      },
    );
  });
  after(async () => {
    await gw?.stop();
    await Promise.all([receiver?.close(), upstream?.close(), trap?.close()]);
  });

  test('a request makes a SERVER span and a CLIENT span whose context the upstream receives', async () => {
    const reply = await request(`${gw.url}/users/42`, { headers: { 'x-request-id': 'trace-1' } });
    assert.equal(reply.status, 200);
    const { traceId, parentId } = upstreamTraceparent(upstream, 'trace-1');
    await receiver.waitForSpans((spans) => spansOf(spans, traceId).length >= 2);
    const spans = spansOf(receiver.spans, traceId);
    const server = spans.find((s) => s.kind === SERVER);
    const client = spans.find((s) => s.kind === CLIENT);
    assert.ok(server && client, JSON.stringify(spans));
    assert.equal(client.spanId, parentId, "the upstream's parent is the gateway's CLIENT span");
    assert.equal(client.parentSpanId, server.spanId);
    assert.equal(server.parentSpanId, '', 'a new trace');
    assert.equal(server.name, 'GET /users/:id');
    assert.equal(server.attributes['http.request.method'], 'GET');
    assert.equal(server.attributes['http.route'], '/users/:id');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(server.attributes['client.address'], '127.0.0.1');
    assert.equal(server.statusCode, 0);
    assert.equal(client.attributes['server.address'], '127.0.0.1');
    assert.equal(client.attributes['http.response.status_code'], 200);
    assert.equal(server.resource['service.name'], 'portico-test');
    // The trace id is in the request's log line.
    const line = await gw.waitFor((r) => r.request_id === 'trace-1');
    assert.equal(line.trace_id, traceId);
  });

  test("user middleware's @opentelemetry/api spans nest under the SERVER span, in the same export", async () => {
    const reply = await request(`${gw.url}/user-span`, { headers: { 'x-request-id': 'trace-user' } });
    assert.equal(reply.status, 200);
    const { traceId } = upstreamTraceparent(upstream, 'trace-user');
    await receiver.waitForSpans((spans) => spansOf(spans, traceId).length >= 3);
    const spans = spansOf(receiver.spans, traceId);
    const server = spans.find((s) => s.kind === SERVER);
    const user = spans.find((s) => s.name === 'user work');
    assert.ok(server && user, JSON.stringify(spans));
    assert.equal(user.kind, INTERNAL);
    assert.equal(user.parentSpanId, server.spanId);
    assert.equal(user.attributes['user.step'], 1);
    assert.equal(user.resource['service.name'], 'portico-test');
    assert.equal(server.attributes['user.tag'], 'set by user middleware', 'set through serverSpanOf(req)');
  });

  test("a pool's CLIENT span names the endpoint the request went to", async () => {
    const reply = await request(`${gw.url}/pooled`, { headers: { 'x-request-id': 'trace-pooled' } });
    assert.equal(reply.status, 200);
    const { traceId } = upstreamTraceparent(upstream, 'trace-pooled');
    await receiver.waitForSpans((spans) => spansOf(spans, traceId).some((s) => s.kind === CLIENT));
    const client = spansOf(receiver.spans, traceId).find((s) => s.kind === CLIENT);
    assert.equal(client?.attributes['server.address'], '127.0.0.1');
    assert.equal(client?.attributes['server.port'], upstream.port);
  });

  test("an incoming traceparent is continued, and the client's tracestate is kept in its trace", async () => {
    const incomingTrace = '4bf92f3577b34da6a3ce929d0e0e4736';
    const incomingParent = '00f067aa0ba902b7';
    const reply = await request(`${gw.url}/users/7`, {
      headers: {
        'x-request-id': 'trace-2',
        traceparent: `00-${incomingTrace}-${incomingParent}-01`,
        tracestate: 'vendor=abc',
      },
    });
    assert.equal(reply.status, 200);
    const { traceId, parentId } = upstreamTraceparent(upstream, 'trace-2');
    assert.equal(traceId, incomingTrace);
    assert.notEqual(parentId, incomingParent, 'the gateway inserted its own spans');
    const seen = upstream.seen.find((s) => s.headers['x-request-id'] === 'trace-2');
    assert.equal(seen?.headers.tracestate, 'vendor=abc');
    await receiver.waitForSpans((spans) => spansOf(spans, incomingTrace).length >= 2);
    const server = spansOf(receiver.spans, incomingTrace).find((s) => s.kind === SERVER);
    assert.equal(server?.parentSpanId, incomingParent);
  });

  test('a tracestate without a valid traceparent is dropped; an unsampled parent stays unsampled', async () => {
    const orphan = await request(`${gw.url}/users/8`, {
      headers: { 'x-request-id': 'trace-2b', traceparent: '00-not-a-trace-01', tracestate: 'vendor=abc' },
    });
    assert.equal(orphan.status, 200);
    const fresh = upstream.seen.find((s) => s.headers['x-request-id'] === 'trace-2b');
    assert.equal(fresh?.headers.tracestate, undefined, 'a tracestate outside any trace is not forwarded');
    assert.match(String(fresh?.headers.traceparent), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);

    const unsampledTrace = '5bf92f3577b34da6a3ce929d0e0e4736';
    const unsampled = await request(`${gw.url}/users/9`, {
      headers: {
        'x-request-id': 'trace-2c',
        traceparent: `00-${unsampledTrace}-00f067aa0ba902b7-00`,
        tracestate: 'vendor=def',
      },
    });
    assert.equal(unsampled.status, 200);
    const seen = upstream.seen.find((s) => s.headers['x-request-id'] === 'trace-2c');
    const match = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/.exec(String(seen?.headers.traceparent));
    assert.ok(match, `unsampled traceparent: ${String(seen?.headers.traceparent)}`);
    assert.equal(match[1], unsampledTrace);
    assert.equal(seen?.headers.tracestate, 'vendor=def');
  });

  test('upstream failures and 5xx mark the spans as errors', async () => {
    const reply = await request(`${gw.url}/down`, { headers: { 'x-request-id': 'trace-3' } });
    assert.equal(reply.status, 502);
    await receiver.waitForSpans((spans) =>
      spans.some((s) => s.kind === SERVER && s.attributes['http.route'] === '/down'),
    );
    const server = receiver.spans.find((s) => s.kind === SERVER && s.attributes['http.route'] === '/down');
    assert.equal(server?.statusCode, ERROR);
    assert.equal(server?.attributes['http.response.status_code'], 502);
    const client = receiver.spans.find((s) => s.kind === CLIENT && s.parentSpanId === server?.spanId);
    assert.equal(client?.statusCode, ERROR);
    assert.equal(client?.attributes['error.type'], 'refused');
  });

  test('the gateway exports traces only, to the configured endpoint only', () => {
    assert.ok(receiver.calls.length > 0);
    assert.ok(
      receiver.calls.every((c) => c === '/opentelemetry.proto.collector.trace.v1.TraceService/Export'),
      receiver.calls.join(', '),
    );
    assert.equal(trap.connections(), 0, 'no exporter configured from the environment connected');
  });
});

describe('tracing when the collector is down', () => {
  test('requests are unaffected: 200s, no slowdown, no crash; shutdown still exits 0', async () => {
    const upstream = await startUpstream();
    const deadPort = await freePort(); // nothing listens here
    const gw = await startGateway(
      {
        routes: [{ path: '/*', target: upstream.url, middleware: ['tracing', 'logging'] }],
        otel: { endpoint: `127.0.0.1:${deadPort}`, export_interval: '100ms', export_timeout: '1s' },
      },
      { workers: 2 },
    );
    try {
      const started = Date.now();
      for (let i = 0; i < 60; i++) {
        const reply = await request(`${gw.url}/x/${i}`, { timeoutMs: 5_000 });
        assert.equal(reply.status, 200);
      }
      const elapsed = Date.now() - started;
      // Generous: 60 sequential requests on loopback take well under a second when healthy.
      assert.ok(elapsed < 10_000, `took ${elapsed} ms`);
      await gw.waitFor(
        (r) => r.msg === 'trace export failing; spans are dropped until the collector answers',
      );
      assert.equal(gw.records().filter((r) => r.msg === 'worker died; respawning').length, 0);
      assert.equal(await gw.stop(), 0);
      assert.doesNotMatch(gw.stderr(), /Unhandled|uncaught/i);
    } finally {
      await gw.stop();
      await upstream.close();
    }
  });
});

describe('tracing at shutdown', () => {
  test('spans still buffered are flushed on graceful shutdown', async () => {
    const receiver = await startOtlpReceiver();
    const upstream = await startUpstream();
    const gw = await startGateway(
      {
        routes: [{ path: '/*', target: upstream.url, middleware: ['tracing'] }],
        // Batches would only leave after a minute: what arrives was flushed by the drain.
        otel: { endpoint: receiver.endpoint, export_interval: '1m' },
      },
      { workers: 1 },
    );
    try {
      for (let i = 0; i < 3; i++) assert.equal((await request(`${gw.url}/flush/${i}`)).status, 200);
      assert.equal(receiver.spans.length, 0);
      assert.equal(await gw.stop(), 0);
      const servers = receiver.spans.filter((s) => s.kind === SERVER);
      assert.equal(servers.length, 3);
    } finally {
      await gw.stop();
      await Promise.all([receiver.close(), upstream.close()]);
    }
  });
});
