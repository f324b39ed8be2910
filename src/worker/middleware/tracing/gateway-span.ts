import {
  type Attributes,
  type AttributeValue,
  type Exception,
  type HrTime,
  type Link,
  type Span,
  type SpanContext,
  ROOT_CONTEXT,
  SpanKind,
  type SpanStatus,
  SpanStatusCode,
  type TimeInput,
  TraceFlags,
  type TraceState,
} from '@opentelemetry/api';
import { hrTime, hrTimeDuration, type InstrumentationScope, timeInputToHrTime } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import {
  RandomIdGenerator,
  type ReadableSpan,
  SamplingDecision,
  type SpanProcessor,
  type TimedEvent,
  TraceIdRatioBasedSampler,
} from '@opentelemetry/sdk-trace';

/** As the SDK's default span limits: a span keeps at most this many attributes/events/links. */
const MAX_ATTRIBUTES = 128;
const MAX_EVENTS = 128;
const MAX_LINKS = 128;

/** Every span's attributes until it has some: frozen, replaced on the first write. */
const NOTHING: Attributes = Object.freeze({});
const UNSET_STATUS: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });

/** What every span of one worker's gateway tracer shares: where ended spans go, and as whom. */
export interface SpanSink {
  readonly processor: SpanProcessor;
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
}

/**
 * The gateway's own SERVER and CLIENT spans: an `@opentelemetry/api` `Span` (user middleware
 * gets it from `serverSpanOf(req)`, sets attributes on it, and parents its own SDK spans on
 * it) that is also the `ReadableSpan` the SDK's batch processor and the OTLP exporter take.
 *
 * The SDK's span did, per request, what this does once or not at all: it sampled through a
 * context object, converted the start time to an `HrTime` pair, validated and copied every
 * attribute, and built a span context, a status and arrays nobody used. Here a span is one
 * object with its ids, start/end as `performance.now()` numbers (converted to wall-clock
 * `HrTime` only when exported, off the request path) and the attributes object it was given;
 * an unsampled span records nothing and is never handed to the processor.
 */
export class GatewaySpan implements Span, ReadableSpan {
  readonly parentSpanContext: SpanContext | undefined;
  /**
   * The gateway sets its attributes as one object literal when the span is recording
   * (`span.attributes = {…}`, one allocation); until then it is a shared empty object.
   */
  attributes: Attributes = NOTHING;
  readonly kind: SpanKind;
  name: string;
  status: SpanStatus = UNSET_STATUS;
  droppedAttributesCount = 0;
  droppedEventsCount = 0;
  droppedLinksCount = 0;
  #events: TimedEvent[] | undefined;
  #links: Link[] | undefined;
  #context: SpanContext | undefined;
  readonly #sink: SpanSink;
  readonly #start: number;
  #end = -1;

  constructor(
    sink: SpanSink,
    readonly traceId: string,
    readonly spanId: string,
    readonly traceFlags: number,
    readonly traceState: TraceState | undefined,
    parent: SpanContext | undefined,
    name: string,
    kind: SpanKind,
    /** `performance.now()` when the span started. */
    start: number,
  ) {
    this.#sink = sink;
    this.parentSpanContext = parent;
    this.name = name;
    this.kind = kind;
    this.#start = start;
  }

  spanContext(): SpanContext {
    return (this.#context ??= {
      traceId: this.traceId,
      spanId: this.spanId,
      traceFlags: this.traceFlags,
      traceState: this.traceState,
      isRemote: false,
    });
  }

  isRecording(): boolean {
    return this.#end < 0 && (this.traceFlags & TraceFlags.SAMPLED) !== 0;
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (!this.isRecording() || !validAttribute(key, value)) return this;
    if (!(key in this.attributes) && Object.keys(this.attributes).length >= MAX_ATTRIBUTES) {
      this.droppedAttributesCount++;
      return this;
    }
    if (this.attributes === NOTHING) this.attributes = {};
    this.attributes[key] = value;
    return this;
  }

  setAttributes(attributes: Attributes): this {
    for (const key of Object.keys(attributes)) {
      const value = attributes[key];
      if (value !== undefined) this.setAttribute(key, value);
    }
    return this;
  }

  addEvent(name: string, attributesOrTime?: Attributes | TimeInput, time?: TimeInput): this {
    if (!this.isRecording()) return this;
    const events = (this.#events ??= []);
    if (events.length >= MAX_EVENTS) {
      this.droppedEventsCount++;
      return this;
    }
    let attributes: Attributes | undefined;
    if (isTimeInput(attributesOrTime)) time = attributesOrTime;
    else attributes = attributesOrTime;
    events.push({
      name,
      attributes: attributes ? copyValid(attributes) : {},
      time: time === undefined ? hrTime() : timeInputToHrTime(time),
      droppedAttributesCount: 0,
    });
    return this;
  }

  addLink(link: Link): this {
    if (!this.isRecording()) return this;
    const links = (this.#links ??= []);
    if (links.length >= MAX_LINKS) this.droppedLinksCount++;
    else links.push(link);
    return this;
  }

  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (!this.isRecording()) return this;
    // As the SDK: an OK status is final, and a message belongs to an error only.
    if (this.status.code === SpanStatusCode.OK) return this;
    if (status.code === SpanStatusCode.UNSET) return this;
    this.status = status.code === SpanStatusCode.ERROR ? status : { code: status.code };
    return this;
  }

  updateName(name: string): this {
    if (this.isRecording()) this.name = name;
    return this;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === 'string') attributes['exception.message'] = exception;
    else {
      if (exception.name !== undefined) attributes['exception.type'] = exception.name;
      else if (exception.code !== undefined) attributes['exception.type'] = String(exception.code);
      if (exception.message !== undefined) attributes['exception.message'] = exception.message;
      if (exception.stack !== undefined) attributes['exception.stacktrace'] = exception.stack;
    }
    this.addEvent('exception', attributes, time);
  }

  /** Ends the span (once) and, when it is sampled, hands it to the batch processor. */
  end(endTime?: TimeInput): void {
    if (this.#end >= 0) return;
    this.#end = performance.now();
    if (endTime !== undefined) this.#endTime = timeInputToHrTime(endTime);
    if ((this.traceFlags & TraceFlags.SAMPLED) !== 0) this.#sink.processor.onEnd(this);
  }

  /** Set when the caller gave `end()` its own time. */
  #endTime: HrTime | undefined;

  /** Where the span goes when it ends. */
  get sink(): SpanSink {
    return this.#sink;
  }
  /** Without events or links, as the gateway's own spans are unless user middleware adds some. */
  get plain(): boolean {
    return this.#events === undefined && this.#links === undefined;
  }

  // ReadableSpan, read by the exporter after the span ended.
  get ended(): boolean {
    return this.#end >= 0;
  }
  get startTime(): HrTime {
    return hrTime(this.#start);
  }
  get endTime(): HrTime {
    return this.#endTime ?? hrTime(this.#end < 0 ? performance.now() : this.#end);
  }
  get duration(): HrTime {
    return hrTimeDuration(this.startTime, this.endTime);
  }
  get events(): TimedEvent[] {
    return this.#events ?? [];
  }
  get links(): Link[] {
    return this.#links ?? [];
  }
  get resource(): Resource {
    return this.#sink.resource;
  }
  get instrumentationScope(): InstrumentationScope {
    return this.#sink.scope;
  }
}

function isTimeInput(value: unknown): value is TimeInput {
  return typeof value === 'number' || value instanceof Date || Array.isArray(value);
}

function validAttribute(key: string, value: unknown): value is AttributeValue {
  if (key.length === 0) return false;
  const type = typeof value;
  if (type === 'string' || type === 'number' || type === 'boolean') return true;
  if (!Array.isArray(value)) return false;
  // Homogeneous arrays of primitives (null/undefined allowed), as the SDK accepts.
  let seen: string | undefined;
  for (const item of value as unknown[]) {
    if (item === null || item === undefined) continue;
    const t = typeof item;
    if (t !== 'string' && t !== 'number' && t !== 'boolean') return false;
    if (seen === undefined) seen = t;
    else if (seen !== t) return false;
  }
  return true;
}

function copyValid(attributes: Attributes): Attributes {
  const copy: Attributes = {};
  for (const key of Object.keys(attributes)) {
    const value = attributes[key];
    if (validAttribute(key, value)) copy[key] = value;
  }
  return copy;
}

/** The sampled flag alone, as a child's or a new trace's `traceFlags`. */
const SAMPLED = TraceFlags.SAMPLED;

/**
 * Starts the gateway's spans with the sampling the SDK was configured with —
 * `ParentBased(TraceIdRatioBased(ratio))`: a remote parent's decision is kept, a new trace
 * is sampled by its id — and the SDK's own id generator, without a context object per span.
 */
export class GatewayTracer {
  readonly #ids = new RandomIdGenerator();
  readonly #root: TraceIdRatioBasedSampler;
  /** `sampling_ratio: 1`, the default: no need to look at the id. */
  readonly #everything: boolean;

  constructor(
    private readonly sink: SpanSink,
    samplingRatio: number,
  ) {
    this.#root = new TraceIdRatioBasedSampler(samplingRatio);
    this.#everything = samplingRatio >= 1;
  }

  #sampled(traceId: string): boolean {
    return this.#root.shouldSample(ROOT_CONTEXT, traceId).decision === SamplingDecision.RECORD_AND_SAMPLED;
  }

  /**
   * A SERVER span continuing `parent` (a valid remote span context) or starting a trace.
   * The caller sets its attributes when it is recording.
   */
  startServer(name: string, parent: SpanContext | undefined, start: number): GatewaySpan {
    let traceId: string;
    let flags: number;
    if (parent === undefined) {
      traceId = this.#ids.generateTraceId();
      flags = this.#everything || this.#sampled(traceId) ? SAMPLED : 0;
    } else {
      traceId = parent.traceId;
      flags = parent.traceFlags & SAMPLED;
    }
    return new GatewaySpan(
      this.sink,
      traceId,
      this.#ids.generateSpanId(),
      flags,
      parent?.traceState,
      parent,
      name,
      SpanKind.SERVER,
      start,
    );
  }

  /** A CLIENT span, child of `parent`, started now; its sampling is the parent's. Same caller duty. */
  startClient(parent: GatewaySpan, name: string): GatewaySpan {
    const flags = parent.traceFlags & SAMPLED;
    return new GatewaySpan(
      this.sink,
      parent.traceId,
      this.#ids.generateSpanId(),
      flags,
      parent.traceState,
      parent.spanContext(),
      name,
      SpanKind.CLIENT,
      performance.now(),
    );
  }
}
