import type { Attributes, HrTime, SpanStatus } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace';
import { GatewaySpan, type SpanSink } from './gateway-span.js';

/*
 * OTLP protobuf (opentelemetry/proto/collector/trace/v1 ExportTraceServiceRequest) for the
 * gateway's own spans, written in one pass into one buffer: every span of a batch shares the
 * sink's resource and scope, whose bytes are encoded once; attribute keys are encoded once;
 * ids go from hex straight into the buffer. A nested message's length is not known before
 * it is written, so five bytes are reserved for it and the message moved back over the
 * unused ones afterwards (a memmove of a few hundred bytes, instead of the two passes —
 * estimate, then write — of the generic serializer). The output is byte for byte what
 * `ProtobufTraceSerializer` writes for the same spans (test/unit/otlp-encoding.test.ts).
 */

const SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE = 0x100;
const SPAN_FLAGS_CONTEXT_IS_REMOTE = 0x200;
/** Attribute keys seen so far, encoded as a KeyValue's key field; bounded. */
const MAX_CACHED_KEYS = 1024;
const RESERVED = 5;
const INT64_MIN = -(2 ** 63);
const INT64_MAX = 2 ** 63;

class Writer {
  buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(more: number): void {
    if (this.pos + more <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + more));
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** A non-negative integer below 2^53. */
  varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    let pos = this.pos;
    while (value > 0x7f) {
      buf[pos++] = (value % 0x80) | 0x80;
      value = Math.floor(value / 0x80);
    }
    buf[pos++] = value;
    this.pos = pos;
  }

  /** An int64 (two's complement, ten bytes when negative). */
  int64(value: number): void {
    if (value >= 0 && value <= Number.MAX_SAFE_INTEGER) {
      this.varint(value);
      return;
    }
    let big = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (big > 0x7fn) {
      this.buf[this.pos++] = Number(big & 0x7fn) | 0x80;
      big >>= 7n;
    }
    this.buf[this.pos++] = Number(big);
  }

  fixed32(value: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
  }

  double(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** HrTime as fixed64 nanoseconds, as the generic serializer computes them (no precision lost). */
  time(time: HrTime): void {
    const seconds = time[0];
    const low16 = (seconds & 0xffff) * 1e9;
    const high = ((seconds / 0x10000) >>> 0) * 1e9;
    const low32 = (low16 >>> 0) + (((high & 0xffff) * 0x10000) >>> 0) + time[1];
    const high32 =
      Math.floor(low16 / 0x100000000) + ((high / 0x10000) >>> 0) + Math.floor(low32 / 0x100000000);
    this.ensure(8);
    this.buf.writeUInt32LE(low32 >>> 0, this.pos);
    this.buf.writeUInt32LE(high32 >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /** A length-prefixed string: ASCII (every gateway attribute, nearly every user one) in place. */
  string(value: string): void {
    const n = value.length;
    if (n < 128 && isAscii(value)) {
      this.ensure(n + 1);
      const buf = this.buf;
      let pos = this.pos;
      buf[pos++] = n;
      for (let i = 0; i < n; i++) buf[pos++] = value.charCodeAt(i);
      this.pos = pos;
      return;
    }
    const length = Buffer.byteLength(value);
    this.varint(length);
    this.ensure(length);
    this.buf.write(value, this.pos, length, 'utf8');
    this.pos += length;
  }

  /** A hex id as bytes (ids in a span context are valid lowercase hex: checked when made). */
  hexBytes(hex: string): void {
    const length = hex.length >>> 1;
    this.ensure(length + 1);
    const buf = this.buf;
    let pos = this.pos;
    buf[pos++] = length;
    for (let i = 0; i < hex.length; i += 2)
      buf[pos++] = ((HEX[hex.charCodeAt(i)] as number) << 4) | (HEX[hex.charCodeAt(i + 1)] as number);
    this.pos = pos;
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Starts a length-delimited message: returns where its length goes. */
  open(): number {
    this.ensure(RESERVED);
    const at = this.pos;
    this.pos += RESERVED;
    return at;
  }

  /** Ends the message opened at `at`: writes its length and closes the gap left. */
  close(at: number): void {
    const start = at + RESERVED;
    const length = this.pos - start;
    let size = 1;
    while (length >= 2 ** (7 * size)) size++;
    if (size < RESERVED) {
      this.buf.copyWithin(at + size, start, this.pos);
      this.pos -= RESERVED - size;
    }
    const end = this.pos;
    this.pos = at;
    this.varint(length);
    this.pos = end;
  }
}

/** Hex digit values by char code ('0'-'9', 'a'-'f', 'A'-'F'). */
const HEX = new Uint8Array(128);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) HEX[97 + i] = HEX[65 + i] = 10 + i;

function isAscii(value: string): boolean {
  for (let i = 0; i < value.length; i++) if (value.charCodeAt(i) > 0x7f) return false;
  return true;
}

const varintSize = (value: number): number =>
  value < 0x80 ? 1 : value < 0x4000 ? 2 : value < 0x200000 ? 3 : 4;

const keyCache = new Map<string, Buffer>();

/** A KeyValue's key field (tag, length, bytes), encoded once per key. */
function keyBytes(key: string): Buffer {
  let encoded = keyCache.get(key);
  if (encoded === undefined) {
    const k = new Writer(Buffer.byteLength(key) + 6);
    k.tag(1, 2);
    k.string(key);
    encoded = Buffer.from(k.buf.subarray(0, k.pos));
    if (keyCache.size < MAX_CACHED_KEYS) keyCache.set(key, encoded);
  }
  return encoded;
}

function writeKey(w: Writer, key: string): void {
  w.raw(keyBytes(key));
}

function writeAnyValue(w: Writer, value: unknown): void {
  switch (typeof value) {
    case 'string':
      w.tag(1, 2);
      w.string(value);
      return;
    case 'boolean':
      w.tag(2, 0);
      w.varint(value ? 1 : 0);
      return;
    case 'number':
      if (Number.isInteger(value) && value >= INT64_MIN && value < INT64_MAX) {
        w.tag(3, 0);
        w.int64(value);
      } else {
        w.tag(4, 1);
        w.double(value);
      }
      return;
  }
  if (value instanceof Uint8Array) {
    w.tag(7, 2);
    w.varint(value.length);
    w.raw(value);
  } else if (Array.isArray(value)) {
    w.tag(5, 2);
    const array = w.open();
    for (const item of value) writeNestedAnyValue(w, 1, item);
    w.close(array);
  }
}

/** An AnyValue as the length-delimited field `field` (an array's value, a KeyValue's value). */
function writeNestedAnyValue(w: Writer, field: number, value: unknown): void {
  w.tag(field, 2);
  const at = w.open();
  writeAnyValue(w, value);
  w.close(at);
}

function writeAttributes(w: Writer, attributes: Attributes, field: number): void {
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    const value = attributes[key];
    w.tag(field, 2);
    // The common case — an ASCII string — with its lengths computed, not reserved and moved.
    if (typeof value === 'string' && value.length < 128 && isAscii(value)) {
      writeKeyValueAscii(w, key, value);
      continue;
    }
    const kv = w.open();
    writeKey(w, key);
    writeNestedAnyValue(w, 2, value);
    w.close(kv);
  }
}

function writeKeyValueAscii(w: Writer, key: string, value: string): void {
  const encodedKey = keyBytes(key);
  const any = 2 + value.length; // tag, length (< 128), bytes
  w.varint(encodedKey.length + 1 + varintSize(any) + any);
  w.raw(encodedKey);
  w.tag(2, 2);
  w.varint(any);
  w.tag(1, 2);
  w.string(value);
}

function writeStatus(w: Writer, status: SpanStatus): void {
  w.tag(15, 2);
  const at = w.open();
  if (status.message) {
    w.tag(2, 2);
    w.string(status.message);
  }
  w.tag(3, 0);
  w.varint(status.code);
  w.close(at);
}

function writeSpan(w: Writer, span: GatewaySpan): void {
  const at = w.open();
  w.tag(1, 2);
  w.hexBytes(span.traceId);
  w.tag(2, 2);
  w.hexBytes(span.spanId);
  const traceState = span.traceState?.serialize();
  if (traceState) {
    w.tag(3, 2);
    w.string(traceState);
  }
  const parent = span.parentSpanContext;
  if (parent?.spanId) {
    w.tag(4, 2);
    w.hexBytes(parent.spanId);
  }
  w.tag(5, 2);
  w.string(span.name);
  w.tag(6, 0);
  w.varint(span.kind + 1); // OTLP's kinds are the API's plus one (0 is "unspecified")
  w.tag(7, 1);
  w.time(span.startTime);
  w.tag(8, 1);
  w.time(span.endTime);
  writeAttributes(w, span.attributes, 9);
  w.tag(10, 0);
  w.varint(span.droppedAttributesCount);
  w.tag(12, 0);
  w.varint(span.droppedEventsCount);
  w.tag(14, 0);
  w.varint(span.droppedLinksCount);
  writeStatus(w, span.status);
  let flags = (span.traceFlags & 0xff) | SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE;
  if (parent?.isRemote) flags |= SPAN_FLAGS_CONTEXT_IS_REMOTE;
  w.tag(16, 5);
  w.fixed32(flags);
  w.close(at);
}

/** The resource and scope fields every ResourceSpans/ScopeSpans of a sink starts with. */
interface SinkHeader {
  resource: Buffer;
  scope: Buffer;
}
const headers = new WeakMap<SpanSink, SinkHeader>();

function headerOf(sink: SpanSink): SinkHeader {
  let header = headers.get(sink);
  if (header === undefined) {
    const r = new Writer(256);
    r.tag(1, 2);
    const resource = r.open();
    writeAttributes(r, sink.resource.attributes, 1);
    r.tag(2, 0); // dropped_attributes_count: written as 0, as the generic serializer does
    r.varint(0);
    r.close(resource);
    const s = new Writer(64);
    s.tag(1, 2);
    const scope = s.open();
    s.tag(1, 2);
    s.string(sink.scope.name);
    if (sink.scope.version) {
      s.tag(2, 2);
      s.string(sink.scope.version);
    }
    s.close(scope);
    header = {
      resource: Buffer.from(r.buf.subarray(0, r.pos)),
      scope: Buffer.from(s.buf.subarray(0, s.pos)),
    };
    headers.set(sink, header);
  }
  return header;
}

/**
 * One ExportTraceServiceRequest holding `spans`: gateway spans of `sink`, without events or
 * links (`encodable` says which).
 */
export function encodeGatewaySpans(sink: SpanSink, spans: readonly GatewaySpan[]): Buffer {
  const header = headerOf(sink);
  const w = new Writer(64 + header.resource.length + header.scope.length + spans.length * 320);
  w.tag(1, 2);
  const resourceSpans = w.open();
  w.raw(header.resource);
  w.tag(2, 2);
  const scopeSpans = w.open();
  w.raw(header.scope);
  for (const span of spans) {
    w.tag(2, 2);
    writeSpan(w, span);
  }
  w.close(scopeSpans);
  w.close(resourceSpans);
  return w.buf.subarray(0, w.pos);
}

/** Whether the fast encoding covers this span (the generic serializer takes the rest). */
export function encodable(span: ReadableSpan): span is GatewaySpan {
  return span instanceof GatewaySpan && span.plain;
}
