import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Context,
  ROOT_CONTEXT,
  type SpanContext,
  SpanStatusCode,
  TraceFlags,
  trace,
} from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOnSampler,
  type ReadableSpan,
  type SpanProcessor,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { traceSerializer } from '../../src/worker/middleware/tracing/exporter.js';
import {
  type GatewaySpan,
  GatewayTracer,
  type SpanSink,
} from '../../src/worker/middleware/tracing/gateway-span.js';
import { encodable, encodeGatewaySpans } from '../../src/worker/middleware/tracing/otlp-encoding.js';
import { decodeExportRequest } from '../helpers/otlp-receiver.js';

/** A processor that keeps what ends, in order. */
function collector(): SpanProcessor & { ended: ReadableSpan[] } {
  const ended: ReadableSpan[] = [];
  return {
    ended,
    onStart() {},
    onEnd: (span) => void ended.push(span),
    forceFlush: () => Promise.resolve(),
    shutdown: () => Promise.resolve(),
  };
}

function sinkWith(processor: SpanProcessor): SpanSink {
  return {
    processor,
    resource: resourceFromAttributes({
      'service.name': 'portico-test',
      'service.instance.id': 'host:1',
      'x.n': 3,
    }),
    scope: { name: 'portico' },
  };
}

const remoteParent: SpanContext = {
  traceId: '0af7651916cd43dd8448eb211c80319c',
  spanId: 'b7ad6b7169203331',
  traceFlags: TraceFlags.SAMPLED,
  traceState: new TraceState('vendor=a,other=b'),
  isRemote: true,
};

/** Spans covering what the encoding must get right: every value type, status, parentage, time. */
function varietyOfSpans(tracer: GatewayTracer): void {
  const server = tracer.startServer('GET /users/:id', undefined, performance.now() - 1.2345);
  server.attributes = {
    'http.request.method': 'GET',
    'http.route': '/users/:id',
    'url.path': '/users/42',
    'client.address': '127.0.0.1',
  };
  server.setAttribute('http.response.status_code', 200);
  server.setAttribute('negative', -5);
  server.setAttribute('huge', 2 ** 60);
  server.setAttribute('ratio', 0.25);
  server.setAttribute('flag', false);
  server.setAttribute('list', ['a', 'b']);
  server.setAttribute('numbers', [1, 2.5, -3]);
  server.setAttribute('utf8', 'grüße – 日本');
  server.setAttribute('long', 'x'.repeat(300));
  server.setAttribute('ünïcode.key', 'v');
  const client = tracer.startClient(server, 'GET');
  client.attributes = { 'server.address': 'users.internal', 'server.port': 9002 };
  client.setStatus({ code: SpanStatusCode.ERROR, message: 'upstream refused' });
  client.end();
  server.end();
  const continued = tracer.startServer('POST /orders', remoteParent, performance.now());
  continued.attributes = { 'http.request.method': 'POST' };
  continued.setStatus({ code: SpanStatusCode.OK });
  continued.end();
}

test('the fast encoding writes byte for byte what the generic OTLP serializer writes', () => {
  const processor = collector();
  const sink = sinkWith(processor);
  varietyOfSpans(new GatewayTracer(sink, 1));
  const spans = processor.ended as GatewaySpan[];
  assert.equal(spans.length, 3);
  assert.ok(spans.every((span) => encodable(span)));
  const fast = encodeGatewaySpans(sink, spans);
  const generic = ProtobufTraceSerializer.serializeRequest(spans);
  assert.ok(generic);
  assert.equal(Buffer.from(fast).toString('hex'), Buffer.from(generic).toString('hex'));
});

test('unsampled spans are never handed on, and sampling keeps a remote decision', () => {
  const processor = collector();
  const tracer = new GatewayTracer(sinkWith(processor), 0);
  const root = tracer.startServer('GET /', undefined, performance.now());
  assert.equal(root.isRecording(), false);
  root.setAttribute('ignored', 1);
  assert.deepEqual(root.attributes, {});
  tracer.startClient(root, 'GET').end();
  root.end();
  assert.equal(processor.ended.length, 0);
  // A sampled remote parent is followed even at ratio 0; its trace id and state are kept.
  const child = tracer.startServer('GET /', remoteParent, performance.now());
  assert.equal(child.isRecording(), true);
  assert.equal(child.traceId, remoteParent.traceId);
  assert.equal(child.spanContext().traceState?.serialize(), 'vendor=a,other=b');
  child.end();
  child.end(); // once only
  assert.equal(processor.ended.length, 1);
  const unsampled = tracer.startServer('GET /', { ...remoteParent, traceFlags: TraceFlags.NONE }, 0);
  assert.equal(unsampled.isRecording(), false);
});

test('a batch mixing gateway spans, spans with events and SDK spans decodes to all of them', () => {
  const processor = collector();
  const sink = sinkWith(processor);
  const tracer = new GatewayTracer(sink, 1);
  const server = tracer.startServer('GET /a', undefined, performance.now());
  server.attributes = { 'http.route': '/a' };
  // User middleware works with the API: an SDK span parented on the gateway's span.
  const provider = new TracerProvider({ sampler: new AlwaysOnSampler(), spanProcessors: [processor] });
  const parent: Context = trace.setSpan(ROOT_CONTEXT, server);
  provider.getTracer('user').startSpan('user work', {}, parent).end();
  const withEvent = tracer.startClient(server, 'GET');
  withEvent.addEvent('retry', { attempt: 2 });
  withEvent.end();
  server.end();
  const spans = processor.ended;
  assert.deepEqual(
    spans.map((s) => encodable(s)),
    [false, false, true],
  );
  const bytes = traceSerializer.serializeRequest(spans);
  assert.ok(bytes);
  const decoded = decodeExportRequest(Buffer.from(bytes));
  assert.deepEqual(decoded.map((s) => s.name).sort(), ['GET', 'GET /a', 'user work']);
  const user = decoded.find((s) => s.name === 'user work');
  assert.equal(user?.parentSpanId, server.spanId);
  assert.equal(user?.traceId, server.traceId);
  assert.equal(decoded.find((s) => s.name === 'GET /a')?.resource['service.name'], 'portico-test');
});
