import {
  Server,
  ServerCredentials,
  type ServiceDefinition,
  type UntypedServiceImplementation,
} from '@grpc/grpc-js';

/*
 * A real OTLP/gRPC trace receiver for tests: a grpc-js server implementing
 * `opentelemetry.proto.collector.trace.v1.TraceService/Export`, with a small protobuf
 * wire-format decoder for the fields the tests read (field numbers from the OTLP .proto files,
 * opentelemetry/proto/trace/v1/trace.proto and common/v1/common.proto).
 */

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** 1 internal, 2 server, 3 client. */
  kind: number;
  attributes: Record<string, string | number | boolean>;
  /** 0 unset, 1 ok, 2 error. */
  statusCode: number;
  resource: Record<string, string | number | boolean>;
}

export interface OtlpReceiver {
  port: number;
  endpoint: string;
  spans: ReceivedSpan[];
  /** Trace spans received so far, kept in `spans` or not (`retainSpans: false`). */
  readonly spanCount: number;
  /** Full method paths of every call received (only trace exports are expected). */
  calls: string[];
  waitForSpans(predicate: (spans: ReceivedSpan[]) => boolean, timeoutMs?: number): Promise<ReceivedSpan[]>;
  close(): Promise<void>;
}

type Field = { field: number; wire: number; value: number | Buffer };

function readVarint(buf: Buffer, pos: number): [number, number] {
  let result = 0;
  let shift = 1;
  for (;;) {
    const byte = buf[pos++] as number;
    result += (byte & 0x7f) * shift;
    if (byte < 0x80) return [result, pos];
    shift *= 128;
  }
}

function fields(buf: Buffer): Field[] {
  const out: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [tag, next] = readVarint(buf, pos);
    pos = next;
    const field = Math.floor(tag / 8);
    const wire = tag & 7;
    if (wire === 0) {
      const [value, after] = readVarint(buf, pos);
      out.push({ field, wire, value });
      pos = after;
    } else if (wire === 1) {
      out.push({ field, wire, value: buf.subarray(pos, pos + 8) });
      pos += 8;
    } else if (wire === 2) {
      const [length, after] = readVarint(buf, pos);
      out.push({ field, wire, value: buf.subarray(after, after + length) });
      pos = after + length;
    } else if (wire === 5) {
      out.push({ field, wire, value: buf.subarray(pos, pos + 4) });
      pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  return out;
}

const bytesOf = (f: Field[], n: number) => f.filter((x) => x.field === n).map((x) => x.value as Buffer);
const first = (f: Field[], n: number) => f.find((x) => x.field === n)?.value;

function anyValue(buf: Buffer): string | number | boolean {
  const [f] = fields(buf);
  if (!f) return '';
  if (f.field === 1) return (f.value as Buffer).toString('utf8');
  if (f.field === 2) return f.value === 1;
  if (f.field === 3) return f.value as number;
  if (f.field === 4) return (f.value as Buffer).readDoubleLE(0);
  return `<field ${f.field}>`;
}

function keyValues(list: Buffer[]): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const kv of list) {
    const f = fields(kv);
    const key = (first(f, 1) as Buffer | undefined)?.toString('utf8') ?? '';
    const value = first(f, 2) as Buffer | undefined;
    out[key] = value ? anyValue(value) : '';
  }
  return out;
}

/** Decodes an `ExportTraceServiceRequest`. */
export function decodeExportRequest(buf: Buffer): ReceivedSpan[] {
  const spans: ReceivedSpan[] = [];
  for (const resourceSpans of bytesOf(fields(buf), 1)) {
    const rs = fields(resourceSpans);
    const resourceBuf = first(rs, 1) as Buffer | undefined;
    const resource = resourceBuf ? keyValues(bytesOf(fields(resourceBuf), 1)) : {};
    for (const scopeSpans of bytesOf(rs, 2)) {
      for (const spanBuf of bytesOf(fields(scopeSpans), 2)) {
        const s = fields(spanBuf);
        const hex = (n: number) => ((first(s, n) as Buffer | undefined) ?? Buffer.alloc(0)).toString('hex');
        const status = first(s, 15) as Buffer | undefined;
        spans.push({
          traceId: hex(1),
          spanId: hex(2),
          parentSpanId: hex(4),
          name: (first(s, 5) as Buffer | undefined)?.toString('utf8') ?? '',
          kind: (first(s, 6) as number | undefined) ?? 0,
          attributes: keyValues(bytesOf(s, 9)),
          statusCode: status ? ((first(fields(status), 3) as number | undefined) ?? 0) : 0,
          resource,
        });
      }
    }
  }
  return spans;
}

/** Spans in an `ExportTraceServiceRequest`, counted without decoding them (cheap). */
export function countSpans(buf: Buffer): number {
  let count = 0;
  for (const resourceSpans of bytesOf(fields(buf), 1)) {
    for (const scopeSpans of bytesOf(fields(resourceSpans), 2))
      count += bytesOf(fields(scopeSpans), 2).length;
  }
  return count;
}

const identity = (b: Buffer) => b;
const empty = () => Buffer.alloc(0);

function exportService(path: string): ServiceDefinition {
  return {
    Export: {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: empty,
      responseDeserialize: identity,
    },
  };
}

/**
 * Starts a receiver on 127.0.0.1 (plaintext, as a local collector). `retainSpans: false` only
 * counts spans, without decoding them, for benchmarks: a long run would otherwise hold
 * millions in memory, and decoding costs more CPU than the gateway spends per request.
 */
export async function startOtlpReceiver(options: { retainSpans?: boolean } = {}): Promise<OtlpReceiver> {
  const retain = options.retainSpans ?? true;
  const spans: ReceivedSpan[] = [];
  let spanCount = 0;
  const calls: string[] = [];
  const waiters: (() => void)[] = [];
  const server = new Server();
  const signals = {
    '/opentelemetry.proto.collector.trace.v1.TraceService/Export': true,
    '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export': false,
    '/opentelemetry.proto.collector.logs.v1.LogsService/Export': false,
  };
  for (const [path, isTrace] of Object.entries(signals)) {
    const implementation: UntypedServiceImplementation = {
      Export(call: { request: Buffer }, callback: (err: null, response: Buffer) => void) {
        calls.push(path);
        if (isTrace && retain) {
          const received = decodeExportRequest(call.request);
          spanCount += received.length;
          spans.push(...received);
        } else if (isTrace) spanCount += countSpans(call.request);
        callback(null, Buffer.alloc(0));
        for (const wake of waiters.splice(0)) wake();
      },
    };
    server.addService(exportService(path), implementation);
  }
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, bound) =>
      err ? reject(err) : resolve(bound),
    ),
  );
  return {
    port,
    endpoint: `127.0.0.1:${port}`,
    spans,
    get spanCount() {
      return spanCount;
    },
    calls,
    async waitForSpans(predicate, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(spans)) {
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`spans not received in ${timeoutMs} ms; got ${JSON.stringify(spans)}`);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, Math.min(left, 200));
          waiters.push(() => {
            clearTimeout(timer);
            resolve();
          });
        });
      }
      return spans;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => resolve());
        setTimeout(() => server.forceShutdown(), 1_000).unref();
      }),
  };
}
