import {
  convertLegacyOtlpGrpcOptions,
  createOtlpGrpcExportDelegate,
} from '@opentelemetry/otlp-grpc-exporter-base';
import { OTLPExporterBase } from '@opentelemetry/otlp-exporter-base';
import {
  type IExportTraceServiceResponse,
  type ISerializer,
  ProtobufTraceSerializer,
  TraceExporterMetricsHelper,
} from '@opentelemetry/otlp-transformer';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import type { GatewaySpan } from './gateway-span.js';
import { encodable, encodeGatewaySpans } from './otlp-encoding.js';

/**
 * Gateway spans through the fast encoding, any other span (user middleware's SDK spans, or a
 * gateway span that got events or links) through the generic serializer. Two encoded
 * ExportTraceServiceRequests concatenated are one: protobuf merges repeated fields.
 */
export const traceSerializer: ISerializer<ReadableSpan[], IExportTraceServiceResponse> = {
  serializeRequest(spans) {
    let own: GatewaySpan[] | undefined;
    let other: ReadableSpan[] | undefined;
    for (const span of spans) {
      if (encodable(span) && (own === undefined || span.sink === own[0]?.sink)) (own ??= []).push(span);
      else (other ??= []).push(span);
    }
    const fast = own === undefined ? undefined : encodeGatewaySpans((own[0] as GatewaySpan).sink, own);
    const generic = other === undefined ? undefined : ProtobufTraceSerializer.serializeRequest(other);
    if (generic === undefined) return fast;
    if (fast === undefined) return generic;
    return Buffer.concat([fast, generic]);
  },
  deserializeResponse: (data) => ProtobufTraceSerializer.deserializeResponse(data),
};

/**
 * What `OTLPTraceExporter` (`@opentelemetry/exporter-trace-otlp-grpc`) is, with the serializer above:
 * the same gRPC transport, options, service path and self-observability, built from the
 * pieces that class is made of (its constructor is this one line with the generic serializer).
 */
export class GatewayTraceExporter extends OTLPExporterBase<ReadableSpan[]> {
  constructor(config: { url: string; timeoutMillis: number }) {
    super(
      createOtlpGrpcExportDelegate(
        convertLegacyOtlpGrpcOptions(config, 'TRACES'),
        traceSerializer,
        'otlp_grpc_span_exporter',
        TraceExporterMetricsHelper,
        undefined,
        'TraceExportService',
        '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
      ),
    );
  }
}
