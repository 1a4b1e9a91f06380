import {
  diag,
  INVALID_SPAN_CONTEXT,
  isSpanContextValid,
  SamplingDecision,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type AttributeValue,
  type Context,
  type Exception,
  type HrTime,
  type Link,
  type Sampler,
  type Span,
  type SpanAttributes,
  type SpanContext,
  type SpanKind,
  type SpanStatus,
  type TimeInput,
  type Tracer,
} from "@opentelemetry/api";
import {
  AddAttributeDecision,
  cleanAttributes,
  cleanSimpleAttributes,
  hrTime,
  hrTimeDuration,
  isTimeInput,
  isTimeInputHrTime,
  isTracingSuppressed,
  maybeAddAttribute,
  millisToHrTime,
  type InstrumentationScope,
} from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import type { IdGenerator, ReadableSpan, SpanLimits, SpanProcessor, TimedEvent } from "@opentelemetry/sdk-trace";

/**
 * Spans the platform starts on its hot paths (the RPC SERVER span, the database CLIENT span, an
 * outgoing call's CLIENT span), built without the SDK's tracer but for the same sampler and span processors, so exporters, the
 * `OTEL_*` settings and parent/child context behave as with `tracer.startSpan`.
 *
 * Why: with every call sampled, the SDK's tracer copied a span's attributes twice when it started
 * (`cleanAttributes`, once before the sampler and once after), checked each again per
 * `setAttribute`, and built the span's timestamps from three clock reads and five arrays
 * (docs/performance.md, "Sixth round: tracing"). Here a span starts with the platform's frozen
 * attribute set as it is (checked against the limits once per set, copied on the first write),
 * and shares its resource and instrumentation scope with every span of its tracer.
 *
 * What the SDK's span guarantees is kept (test/unit/recorded-span.spec.ts compares the two): the
 * sampler decides (a NOT_RECORD decision gives the same non-recording span the SDK returns, and a
 * suppressed context the SDK's invalid span); ids come from the same generator; it ends once (a second
 * `end` is reported through `diag`, as the SDK does) and ignores writes after its end; attribute,
 * event and link limits and dropped counts; status (OK is final, a message only with ERROR);
 * `recordException` as an `exception` event; timestamps as the SDK takes them (the start from the
 * wall clock, the end from the monotonic clock since the start). Not kept: the SDK tracer's own
 * `otel.sdk.span.*` metrics, which it records only when given a meter provider (telemetry.ts gives
 * none).
 */

/** The parts of a tracer provider that a span needs, set once by telemetry.ts (or a test). */
export interface SpanPipeline {
  sampler: Sampler;
  /** Every configured processor (a span is handed to each, in order, as the SDK does). */
  processors: readonly SpanProcessor[];
  resource: Resource;
  limits: Required<SpanLimits>;
  ids: IdGenerator;
}

/**
 * The span limits the SDK's TracerProvider applies when it is given none (it reads no environment
 * variable for them). telemetry.ts hands these same limits to the TracerProvider, so spans started
 * by the SDK's tracer (the outbox's PRODUCER and the consumers' CONSUMER spans, a service's own)
 * and spans started here are held to one set.
 */
export const SPAN_LIMITS: Required<SpanLimits> = Object.freeze({
  attributeCountLimit: 128,
  attributeValueLengthLimit: Infinity,
  eventCountLimit: 128,
  linkCountLimit: 128,
  attributePerEventCountLimit: 128,
  attributePerLinkCountLimit: 128,
});

let pipeline: SpanPipeline | undefined;

/** Set by startTelemetry (and by tests) to the pipeline of the tracer provider it registers. */
export function setSpanPipeline(next: SpanPipeline | undefined): void {
  pipeline = next;
  cleanedSets = new WeakMap();
  unions = new WeakMap();
}

/** The instrumentation scope of one of the platform's tracers, shared by each of its spans. */
export interface PlatformTracer {
  /**
   * A span under `parent`'s span (a root span when it has none), not made active. `attributes`
   * must be frozen when it is shared between spans (it is checked once per set, never copied until
   * the span is written to).
   */
  startSpan(name: string, kind: SpanKind, attributes: Attributes, parent: Context): Span;
}

/**
 * A tracer for the platform's hot paths. Until a pipeline is set (no telemetry in this process,
 * or a provider registered some other way) it defers to the global provider's tracer of the
 * same name, so nothing changes for code that never started the platform's telemetry.
 */
export function platformTracer(name: string, version?: string): PlatformTracer {
  const scope: InstrumentationScope = Object.freeze({ name, version, schemaUrl: undefined });
  let fallback: Tracer | undefined;
  return {
    startSpan(spanName, kind, attributes, parent) {
      if (pipeline === undefined) {
        fallback ??= trace.getTracer(name, version);
        return fallback.startSpan(spanName, { kind, attributes }, parent);
      }
      return startRecordedSpan(pipeline, scope, spanName, kind, attributes, parent);
    },
  };
}

/** Frozen attribute sets already checked against the limits: the set to use, and what it dropped. */
let cleanedSets = new WeakMap<Attributes, { attributes: Attributes; dropped: number }>();

function startRecordedSpan(pipeline: SpanPipeline, scope: InstrumentationScope, name: string, kind: SpanKind, attributes: Attributes, parent: Context): Span {
  // As Tracer.startSpan: a suppressed context gets the invalid span, the parent's trace is kept.
  if (isTracingSuppressed(parent)) return trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
  const parentSpanContext = trace.getSpan(parent)?.spanContext();
  const spanId = pipeline.ids.generateSpanId();
  const validParent = parentSpanContext !== undefined && isSpanContextValid(parentSpanContext) ? parentSpanContext : undefined;
  const traceId = validParent ? validParent.traceId : pipeline.ids.generateTraceId();
  const cleaned = cleanedSet(attributes, pipeline.limits);
  const sampling = pipeline.sampler.shouldSample(parent, traceId, name, kind, cleaned.attributes, NO_LINKS);
  const spanContext: SpanContext = {
    traceId,
    spanId,
    traceFlags: sampling.decision === SamplingDecision.RECORD_AND_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE,
    traceState: sampling.traceState ?? validParent?.traceState,
  };
  if (sampling.decision === SamplingDecision.NOT_RECORD) return trace.wrapSpanContext(spanContext);
  let spanAttributes = cleaned.attributes;
  let dropped = cleaned.dropped;
  if (sampling.attributes !== undefined) {
    // Attributes a sampler adds: merged and checked per span, as the SDK does.
    const merged = cleanAttributes({ ...cleaned.attributes, ...sampling.attributes }, pipeline.limits);
    spanAttributes = merged.attributes ?? {};
    dropped += merged.droppedAttributesCount ?? 0;
  }
  const span = new RecordedSpan(pipeline, scope, name, kind, spanContext, validParent, spanAttributes, sampling.attributes !== undefined, dropped);
  for (const processor of pipeline.processors) processor.onStart(span, parent);
  return span;
}

/**
 * `attributes` as the SDK's checks leave them, and how many they dropped. The SDK checks a span's
 * attributes twice, without limits for the sampler and with them for the span; one check with
 * the limits gives the span the same attributes and count (the sampler then sees the set after
 * the limits, which differs only for a set over them). A frozen set is checked once and then
 * used as it is.
 */
function cleanedSet(attributes: Attributes, limits: Required<SpanLimits>): { attributes: Attributes; dropped: number } {
  const frozen = Object.isFrozen(attributes);
  let cleaned = frozen ? cleanedSets.get(attributes) : undefined;
  if (cleaned === undefined) {
    const result = cleanAttributes(attributes, limits);
    cleaned = { attributes: Object.freeze(result.attributes ?? {}), dropped: result.droppedAttributesCount ?? 0 };
    if (frozen) cleanedSets.set(attributes, cleaned);
  }
  return cleaned;
}

/** Per shared start set, per frozen set written to it: their union, or null when it dropped anything. */
let unions = new WeakMap<Attributes, WeakMap<Attributes, Attributes | null>>();

function unionOf(start: Attributes, added: Attributes, limits: Required<SpanLimits>): Attributes | undefined {
  let byAdded = unions.get(start);
  if (byAdded === undefined) unions.set(start, (byAdded = new WeakMap()));
  let union = byAdded.get(added);
  if (union === undefined) {
    const attributes: Attributes = { ...start };
    let count = Object.keys(attributes).length;
    let clean = true;
    for (const key in added) {
      if (!Object.hasOwn(added, key)) continue;
      const decision = maybeAddAttribute({ key, value: added[key], attributes, limits, currentAttributesCount: count });
      if (decision === AddAttributeDecision.ADD_NEW) count++;
      else if (decision !== AddAttributeDecision.ADD_OVERWRITE_EXISTING) clean = false;
    }
    union = clean ? Object.freeze(attributes) : null;
    byAdded.set(added, union);
  }
  return union ?? undefined;
}

const NO_LINKS: Link[] = Object.freeze([]) as unknown as Link[];
const NO_EVENTS: TimedEvent[] = Object.freeze([]) as unknown as TimedEvent[];
const UNSET: SpanStatus = Object.freeze({ code: SpanStatusCode.UNSET });
/** The SDK span's end time before its end. */
const NOT_ENDED: HrTime = Object.freeze([0, 0]) as unknown as HrTime;

/**
 * A recorded span: the API's Span for the code that writes to it, the SDK's ReadableSpan for the
 * processors and exporters that read it once it has ended.
 */
export class RecordedSpan implements Span, ReadableSpan {
  name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext: SpanContext | undefined;
  readonly startTime: HrTime;
  endTime: HrTime = NOT_ENDED;
  status: SpanStatus = UNSET;
  /** The shared, frozen set this span started with until the first write copies it. */
  attributes: Attributes;
  links: Link[] = NO_LINKS;
  events: TimedEvent[] = NO_EVENTS;
  readonly resource: Resource;
  readonly instrumentationScope: InstrumentationScope;
  droppedAttributesCount: number;
  droppedEventsCount = 0;
  droppedLinksCount = 0;
  ended = false;
  private readonly context: SpanContext;
  private readonly pipeline: SpanPipeline;
  private ownsAttributes: boolean;
  private attributeCount: number;
  /** performance.now() at the start: the end time is the start plus the monotonic time since. */
  private readonly startedAt: number;

  constructor(
    pipeline: SpanPipeline,
    scope: InstrumentationScope,
    name: string,
    kind: SpanKind,
    spanContext: SpanContext,
    parentSpanContext: SpanContext | undefined,
    attributes: Attributes,
    ownsAttributes: boolean,
    droppedAttributesCount: number,
  ) {
    const now = Date.now();
    this.pipeline = pipeline;
    this.resource = pipeline.resource;
    this.instrumentationScope = scope;
    this.name = name;
    this.kind = kind;
    this.context = spanContext;
    this.parentSpanContext = parentSpanContext;
    this.attributes = attributes;
    this.ownsAttributes = ownsAttributes;
    this.attributeCount = Object.keys(attributes).length;
    this.droppedAttributesCount = droppedAttributesCount;
    this.startedAt = performance.now();
    // As the SDK: the start on the wall clock (milliseconds), the rest measured from it.
    this.startTime = millisToHrTime(now);
  }

  spanContext(): SpanContext {
    return this.context;
  }

  isRecording(): boolean {
    return !this.ended;
  }

  get duration(): HrTime {
    return this.ended ? hrTimeDuration(this.startTime, this.endTime) : [-1, -1];
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (this.endedAlready()) return this;
    if (!this.ownsAttributes) {
      this.attributes = { ...this.attributes };
      this.ownsAttributes = true;
    }
    const decision = maybeAddAttribute({ key, value, attributes: this.attributes, limits: this.pipeline.limits, currentAttributesCount: this.attributeCount });
    if (decision === AddAttributeDecision.DROP_LIMIT_REACHED) {
      if (++this.droppedAttributesCount === 1) diag.warn("Dropping extra attributes.");
    } else if (decision === AddAttributeDecision.ADD_NEW) this.attributeCount++;
    return this;
  }

  setAttributes(attributes: SpanAttributes): this {
    // A frozen set written to a span that still holds its shared start set: the union of the two
    // is the same for every such span, so it is made once and shared as well (the SERVER span's
    // end attributes, per method, protocol and code). Only when the union dropped nothing, so
    // that skipping the per-key checks skips no warning either.
    if (!this.ownsAttributes && !this.ended && Object.isFrozen(attributes)) {
      const union = unionOf(this.attributes, attributes, this.pipeline.limits);
      if (union !== undefined) {
        this.attributes = union;
        this.attributeCount = Object.keys(union).length;
        return this;
      }
    }
    for (const key in attributes) if (Object.hasOwn(attributes, key)) this.setAttribute(key, attributes[key]!);
    return this;
  }

  addEvent(name: string, attributesOrTime?: SpanAttributes | TimeInput, time?: TimeInput): this {
    if (this.endedAlready()) return this;
    const { eventCountLimit, attributePerEventCountLimit, attributeValueLengthLimit } = this.pipeline.limits;
    if (eventCountLimit === 0) {
      diag.warn("No events allowed.");
      this.droppedEventsCount++;
      return this;
    }
    if (this.events === NO_EVENTS) this.events = [];
    if (this.events.length >= eventCountLimit) {
      if (this.droppedEventsCount === 0) diag.debug("Dropping extra events.");
      this.events.shift();
      this.droppedEventsCount++;
    }
    let attributes = attributesOrTime;
    if (isTimeInput(attributesOrTime)) {
      if (!isTimeInput(time)) time = attributesOrTime;
      attributes = undefined;
    }
    const cleaned = cleanSimpleAttributes(attributes as SpanAttributes | undefined, { attributeCountLimit: attributePerEventCountLimit, attributeValueLengthLimit });
    this.events.push({ name, time: this.timeOf(time), ...cleaned });
    return this;
  }

  addLink(link: Link): this {
    if (this.endedAlready()) return this;
    const { linkCountLimit, attributePerLinkCountLimit, attributeValueLengthLimit } = this.pipeline.limits;
    if (linkCountLimit === 0) {
      this.droppedLinksCount++;
      return this;
    }
    if (this.links === NO_LINKS) this.links = [];
    if (this.links.length >= linkCountLimit) {
      if (this.droppedLinksCount === 0) diag.debug("Dropping extra links.");
      this.links.shift();
      this.droppedLinksCount++;
    }
    this.links.push({ context: link.context, ...cleanAttributes(link.attributes, { attributeCountLimit: attributePerLinkCountLimit, attributeValueLengthLimit }) });
    return this;
  }

  addLinks(links: Link[]): this {
    for (const link of links) this.addLink(link);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.endedAlready()) return this;
    // As the SDK: UNSET changes nothing, OK is final, a message is kept only with ERROR.
    if (status.code === SpanStatusCode.UNSET || this.status.code === SpanStatusCode.OK) return this;
    const next: SpanStatus = { code: status.code };
    if (status.code === SpanStatusCode.ERROR) {
      if (typeof status.message === "string") next.message = status.message;
      else if (status.message != null) diag.warn(`Dropping invalid status.message of type '${typeof status.message}', expected 'string'`);
    }
    this.status = next;
    return this;
  }

  updateName(name: string): this {
    if (this.endedAlready()) return this;
    this.name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    if (this.endedAlready()) {
      diag.error(`${this.name} ${this.context.traceId}-${this.context.spanId} - You can only call end() on a span once.`);
      return;
    }
    this.endTime = this.timeOf(endTime);
    if (this.endTime[0] < this.startTime[0] || (this.endTime[0] === this.startTime[0] && this.endTime[1] < this.startTime[1])) {
      diag.warn("Inconsistent start and end time, startTime > endTime. Setting span duration to 0ms.", this.startTime, this.endTime);
      this.endTime = this.startTime.slice() as HrTime;
    }
    if (this.droppedEventsCount > 0) diag.warn(`Dropped ${this.droppedEventsCount} events because eventCountLimit reached`);
    if (this.droppedLinksCount > 0) diag.warn(`Dropped ${this.droppedLinksCount} links because linkCountLimit reached`);
    const processors = this.pipeline.processors;
    for (const processor of processors) processor.onEnding?.(this);
    this.ended = true;
    for (const processor of processors) processor.onEnd(this);
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: SpanAttributes = {};
    if (typeof exception === "string") attributes["exception.message"] = exception;
    else if (exception) {
      if (exception.code) attributes["exception.type"] = exception.code.toString();
      else if (exception.name) attributes["exception.type"] = exception.name;
      if (exception.message) attributes["exception.message"] = exception.message;
      if (exception.stack) attributes["exception.stacktrace"] = exception.stack;
    }
    if (attributes["exception.type"] || attributes["exception.message"]) this.addEvent("exception", attributes, time);
    else diag.warn(`Failed to record an exception ${String(exception)}`);
  }

  /** The SDK span's `_getTime`: a time given as performance.now(), epoch millis, a Date or HrTime; now when none. */
  private timeOf(input: TimeInput | undefined): HrTime {
    if (typeof input === "number" && input <= performance.now()) {
      // The SDK's offset, wall clock minus performance clock at the start: not kept per span,
      // since the start's milliseconds are exactly the wall-clock reading it was made from.
      const offset = this.startTime[0] * 1e3 + this.startTime[1] / 1e6 - (this.startedAt + performance.timeOrigin);
      return hrTime(input + offset);
    }
    if (typeof input === "number") return millisToHrTime(input);
    if (input instanceof Date) return millisToHrTime(input.getTime());
    if (input !== undefined && isTimeInputHrTime(input)) return input;
    // addHrTimes(startTime, millisToHrTime(elapsed)) as the SDK computes it, without the two arrays in between.
    const elapsed = performance.now() - this.startedAt;
    let seconds = this.startTime[0] + Math.trunc(elapsed / 1e3);
    let nanos = this.startTime[1] + Math.round((elapsed % 1e3) * 1e6);
    if (nanos >= 1e9) {
      nanos -= 1e9;
      seconds += 1;
    }
    return [seconds, nanos];
  }

  private endedAlready(): boolean {
    if (this.ended) diag.warn(`Cannot execute the operation on ended Span {traceId: ${this.context.traceId}, spanId: ${this.context.spanId}}`);
    return this.ended;
  }
}
