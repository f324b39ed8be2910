import { hostname } from 'node:os';
import { trace, type Tracer } from '@opentelemetry/api';
import { type ExportResult, ExportResultCode, W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  ParentBasedSampler,
  type ReadableSpan,
  type SpanExporter,
  StackContextManager,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';
import { ATTR_SERVICE_INSTANCE_ID, ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { Logger } from 'pino';
import type { TracingSettings } from '../../../shared/config/schema.js';

export interface TracingRuntime {
  tracer: Tracer;
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
 * Starts the OpenTelemetry SDK in this worker, for traces only. NodeSDK would otherwise also
 * start OTLP metrics and logs exporters, resource detectors and whatever instrumentations it
 * is given; all of that is switched off here, so the only connection the gateway opens is
 * to `otel.endpoint`. Spans are made by hand in the `tracing` middleware: the HTTP
 * auto-instrumentation roughly halves a proxy's throughput.
 */
export function startTracing(settings: TracingSettings, logger: Logger): TracingRuntime {
  const scheme = settings.tls ? 'https' : 'http'; // the exporter picks TLS or plaintext from it
  const exporter = new ReportingExporter(
    new OTLPTraceExporter({
      url: `${scheme}://${settings.endpoint}`,
      timeoutMillis: settings.export_timeout,
    }),
    logger,
    settings.endpoint,
  );
  const sdk = new NodeSDK({
    autoDetectResources: false,
    resource: resourceFromAttributes({
      [ATTR_SERVICE_NAME]: settings.service_name,
      [ATTR_SERVICE_INSTANCE_ID]: `${hostname()}:${process.pid}`,
    }),
    instrumentations: [],
    // Spans are passed explicitly, so no context needs to follow async work. The default
    // AsyncLocalStorage manager would switch on async hooks for the whole worker as soon as
    // the exporter enters a context, taxing every promise and callback.
    contextManager: new StackContextManager(),
    metricReaders: [],
    logRecordProcessors: [],
    // traceparent/tracestate only: baggage is the application's business, not the gateway's.
    textMapPropagator: new W3CTraceContextPropagator(),
    sampler: new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(settings.sampling_ratio) }),
    spanProcessors: [
      // Bounded queue: when the collector is slow or down, new spans are dropped, never queued
      // without limit and never waited for on the request path.
      new BatchSpanProcessor({
        exporter,
        maxQueueSize: settings.max_queue_size,
        maxExportBatchSize: Math.min(512, settings.max_queue_size),
        scheduledDelayMillis: settings.export_interval,
        exportTimeoutMillis: settings.export_timeout,
      }),
    ],
  });
  sdk.start();
  return {
    tracer: trace.getTracer('portico'),
    shutdown: () => sdk.shutdown(),
  };
}
