import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import {
  type Attributes,
  propagation,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanStatusCode,
  trace,
} from '@opentelemetry/api';
import type { TracingSettings } from '../../../shared/config/schema.js';
import { internalContextOf } from '../../context.js';
import { ResourceKind } from '../../resources.js';
import type { Middleware, MiddlewareEnv } from '../types.js';
import type { GatewaySpan } from './gateway-span.js';
import type { TracingRuntime } from './provider.js';

/** One SDK per worker and set of `otel` settings, shared by every route. */
const TRACING = new ResourceKind<Promise<TracingRuntime>>('tracing');

// Stable OpenTelemetry semantic-convention attribute names (HTTP, URL, network, error), as
// strings: the conventions package is large, and this module is loaded even without tracing.
const ATTR_CLIENT_ADDRESS = 'client.address';
const ATTR_ERROR_TYPE = 'error.type';
const ATTR_HTTP_REQUEST_METHOD = 'http.request.method';
const ATTR_HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
const ATTR_HTTP_ROUTE = 'http.route';
const ATTR_NETWORK_PEER_ADDRESS = 'network.peer.address';
const ATTR_SERVER_ADDRESS = 'server.address';
const ATTR_SERVER_PORT = 'server.port';
const ATTR_URL_PATH = 'url.path';
const ATTR_URL_SCHEME = 'url.scheme';

const SERVER_SPAN = Symbol('portico.serverSpan');
const CLIENT_SPAN = Symbol('portico.clientSpan');
type Traced = IncomingMessage & { [SERVER_SPAN]?: GatewaySpan; [CLIENT_SPAN]?: GatewaySpan };

const passThrough: Middleware = (next) => next;

/**
 * Writes `traceparent` (and `tracestate` when the trace has one) for the upstream, as the
 * W3C propagator the SDK is configured with would, without building two contexts per
 * request to call it. A client's own `tracestate` is replaced: it belongs to the trace
 * context being rewritten.
 */
function injectTraceContext(headers: IncomingHttpHeaders, span: SpanContext): void {
  const flags = span.traceFlags & 0xff;
  headers.traceparent = `00-${span.traceId}-${span.spanId}-${flags < 16 ? '0' : ''}${flags.toString(16)}`;
  if (span.traceState !== undefined) headers.tracestate = span.traceState.serialize();
  else if (headers.tracestate !== undefined) delete headers.tracestate;
}

/** The span of the request being handled by a `tracing` route, for user middleware. */
export function serverSpanOf(req: IncomingMessage): Span | undefined {
  return (req as Traced)[SERVER_SPAN];
}

/**
 * The `tracing` built-in: one SERVER span per request, continuing an incoming `traceparent`,
 * and one CLIENT span around the upstream exchange whose context is injected as
 * `traceparent`/`tracestate` into the upstream request, so the upstream's spans are its
 * children. 5xx answers and upstream failures mark the spans as errors.
 *
 * Spans are passed explicitly (on the request object), not through the OTel context
 * manager: entering an AsyncLocalStorage context per request would cost every async
 * operation in the worker. Middleware that wants the span uses `serverSpanOf(req)`, and
 * the trace id is `contextOf(req).traceId` (and the log line's `trace_id`).
 */
export async function tracingMiddleware(
  settings: TracingSettings | null,
  { route, logger, resources, upstream }: MiddlewareEnv,
): Promise<Middleware> {
  if (!settings) return passThrough; // otel.enabled: false
  // Loaded only when tracing is on (the SDK and its exporter take a few hundred
  // milliseconds to import).
  const runtime = await resources.shared(TRACING, JSON.stringify(settings), async (own) => {
    const { startTracing } = await import('./provider.js');
    const started = startTracing(settings, logger);
    own.onClose('tracing', () => started.shutdown());
    return started;
  });
  const tracer = runtime.tracer;
  const names = new Map<string, string>();
  // Semantic conventions name a server span "{method} {route}": built once per method.
  const spanName = (method: string) => {
    let name = names.get(method);
    if (name === undefined) {
      name = `${method} ${route.path}`;
      names.set(method, name);
    }
    return name;
  };

  upstream.observe({
    request(req, endpoint) {
      const server = (req as Traced)[SERVER_SPAN];
      if (!server) return;
      const method = req.method ?? 'GET';
      const client = tracer.startClient(server, method);
      if (client.isRecording())
        client.attributes = {
          [ATTR_HTTP_REQUEST_METHOD]: method,
          [ATTR_SERVER_ADDRESS]: endpoint.host,
          [ATTR_SERVER_PORT]: endpoint.port,
          [ATTR_URL_PATH]: req.url ?? '/',
        };
      (req as Traced)[CLIENT_SPAN] = client;
      injectTraceContext(req.headers, client.spanContext());
    },
    response(req, status) {
      const client = (req as Traced)[CLIENT_SPAN];
      if (!client) return;
      client.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, status);
      if (status >= 500) client.setStatus({ code: SpanStatusCode.ERROR });
    },
    end(req, outcome) {
      const client = (req as Traced)[CLIENT_SPAN];
      if (!client) return;
      if (outcome !== 'ok') {
        client.setAttribute(ATTR_ERROR_TYPE, outcome);
        client.setStatus({ code: SpanStatusCode.ERROR, message: `upstream ${outcome}` });
      }
      client.end();
    },
  });

  // `this` is the response: one listener function per route, not a closure per request.
  function onResponseClose(this: ServerResponse): void {
    const span = (this.req as Traced)[SERVER_SPAN];
    if (!span) return;
    if (this.headersSent || this.statusCode === 101) {
      span.setAttribute(ATTR_HTTP_RESPONSE_STATUS_CODE, this.statusCode);
      if (this.statusCode >= 500) span.setStatus({ code: SpanStatusCode.ERROR });
    } else {
      span.setAttribute(ATTR_ERROR_TYPE, 'client_aborted');
    }
    span.end();
  }

  return (next) =>
    function tracing(req, res) {
      const ctx = internalContextOf(req);
      const method = req.method ?? 'GET';
      const parent: SpanContext | undefined =
        req.headers.traceparent === undefined
          ? undefined
          : trace.getSpanContext(propagation.extract(ROOT_CONTEXT, req.headers));
      const span = tracer.startServer(spanName(method), parent, ctx.startTime);
      if (span.isRecording()) {
        const attributes: Attributes = {
          [ATTR_HTTP_REQUEST_METHOD]: method,
          [ATTR_HTTP_ROUTE]: route.path,
          [ATTR_URL_PATH]: ctx.path,
          [ATTR_URL_SCHEME]: (req.socket as { encrypted?: boolean }).encrypted ? 'https' : 'http',
          [ATTR_CLIENT_ADDRESS]: ctx.clientIp,
        };
        // Undefined only on a socket already destroyed; an attribute is left out, not empty.
        const peer = req.socket.remoteAddress;
        if (peer !== undefined) attributes[ATTR_NETWORK_PEER_ADDRESS] = peer;
        span.attributes = attributes;
      }
      ctx.traceId = span.traceId;
      (req as Traced)[SERVER_SPAN] = span;
      res.on('close', onResponseClose); // emitted once per response
      return next(req, res);
    };
}
