import { hostname } from 'node:os';
import { context, propagation, trace } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { dashboardStatus } from '../../dashboard-feed.js';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type SpanExporter,
  StackContextManager,
  TraceIdRatioBasedSampler,
  TracerProvider,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import type { TracingSettings } from '../../../shared/config/schema.js';
import { GatewayTraceExporter } from './exporter.js';
import { GatewayTracer } from './gateway-span.js';

export interface TracingRuntime {
  /** Makes the gateway's own spans (SDK spans are for user middleware). */
  tracer: GatewayTracer;
  /** Flushes buffered spans (bounded by `otel.export_timeout`) and stops the SDK. */
  shutdown(): Promise<void>;
}

/**
 * Logs when export starts failing and when it recovers, once each, instead of once per
 * batch: a collector that is down must not flood the logs or touch the request path.
 */
class ReportingExporter implements SpanExporter {
  #failing = false;

  constructor(
    private readonly inner: SpanExporter,
    private readonly logger: Logger,
    private readonly endpoint: string,
  ) {}

  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      dashboardStatus.tracing_export = result.code === ExportResultCode.FAILED ? 'failing' : 'ok';
      if (result.code === ExportResultCode.FAILED) {
        if (!this.#failing) {
          this.#failing = true;
          this.logger.warn(
            { endpoint: this.endpoint, err: result.error?.message, spans: spans.length },
            'trace export failing; spans are dropped until the collector answers',
          );
        }
      } else if (this.#failing) {
        this.#failing = false;
        this.logger.info({ endpoint: this.endpoint }, 'trace export recovered');
      }
      done(result);
    });
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  forceFlush(): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve();
  }
}

/**
 * Starts the OpenTelemetry trace SDK in this worker: a tracer provider with a bounded batch
 * processor and the OTLP gRPC exporter, registered as the global provider (with the W3C
 * propagator and a stack context manager) so user middleware can use the OTel API too. The
 * only connection it opens is to `otel.endpoint`. Spans are made by hand in the `tracing`
 * middleware: the HTTP auto-instrumentation roughly halves a proxy's throughput.
 *
 * Not `NodeSDK` from `@opentelemetry/sdk-node`: with its metrics, logs, resource detection
 * and instrumentations all switched off it did nothing more than these lines, and importing
 * it loads every exporter it can configure, 7 MB of RSS per worker.
 */
export function startTracing(settings: TracingSettings, logger: Logger): TracingRuntime {
  const scheme = settings.tls ? 'https' : 'http'; // the exporter picks TLS or plaintext from it
  const exporter = new ReportingExporter(
    new GatewayTraceExporter({
      url: `${scheme}://${settings.endpoint}`,
      timeoutMillis: settings.export_timeout,
    }),
    logger,
    settings.endpoint,
  );
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: settings.service_name,
    [ATTR_SERVICE_INSTANCE_ID]: `${hostname()}:${process.pid}`,
  });
  // Bounded queue: when the collector is slow or down, new spans are dropped, never queued
  // without limit and never waited for on the request path.
  const processor = new BatchSpanProcessor({
    exporter,
    maxQueueSize: settings.max_queue_size,
    maxExportBatchSize: Math.min(512, settings.max_queue_size),
    scheduledDelayMillis: settings.export_interval,
    exportTimeoutMillis: settings.export_timeout,
  });
  // The provider is for user middleware's SDK spans; the gateway's own spans go to the same
  // processor directly, as one resource and scope, so one export carries both.
  const provider = new TracerProvider({
    resource,
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sampling_ratio) }),
    spanProcessors: [processor],
  });
  // Spans are passed explicitly, so no context needs to follow async work. An
  // AsyncLocalStorage manager would switch on async hooks for the whole worker as soon as the
  // exporter enters a context, taxing every promise and callback.
  context.setGlobalContextManager(new StackContextManager().enable());
  // traceparent/tracestate only: baggage is the application's business, not the gateway's.
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  trace.setGlobalTracerProvider(provider);
  return {
    tracer: new GatewayTracer({ processor, resource, scope: { name: 'portico' } }, settings.sampling_ratio),
    shutdown: () => provider.shutdown(),
  };
}
