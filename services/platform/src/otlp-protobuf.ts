import type { Attributes, AttributeValue, HrTime, Link, SpanContext } from "@opentelemetry/api";
import type { InstrumentationScope } from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan, TimedEvent } from "@opentelemetry/sdk-trace";

/**
 * An OTLP ExportTraceServiceRequest in protobuf, the same bytes as
 * @opentelemetry/otlp-transformer's ProtobufTraceSerializer writes for the same spans (same
 * fields, same order: otlp-protobuf.spec.ts compares the two, and jaeger-traces.spec.ts has
 * Jaeger's OTLP receiver read it), with less work per span.
 * With every call sampled, the SDK's serializer was the largest part of tracing's cost: it walks
 * every span twice (a size estimate, then the write), copies every string into the buffer one
 * character at a time on each pass, and allocates an array per id. Here one pass writes into a
 * growing buffer kept between exports, ids go from hex straight into it, and the name and each
 * attribute's encoded KeyValue come from a cache: a service's spans repeat the same few dozen
 * names and attribute values (methods, SQL texts, status codes) on every call.
 */
export function serializeTraceExportRequest(spans: ReadableSpan[]): Uint8Array {
  const out = writer;
  out.pos = 0;
  for (const [resource, scopes] of groupByResourceAndScope(spans)) {
    out.tag(1, LEN); // ExportTraceServiceRequest.resource_spans
    const resourceSpans = out.start();
    out.tag(1, LEN); // ResourceSpans.resource
    const resourceStart = out.start();
    writeAttributes(out, resource.attributes, 1);
    out.tag(2, VARINT); // Resource.dropped_attributes_count
    out.varint(0);
    out.finish(resourceStart);
    for (const scopeSpans of scopes.values()) {
      const scope = scopeSpans[0]!.instrumentationScope;
      out.tag(2, LEN); // ResourceSpans.scope_spans
      const scopeSpansStart = out.start();
      writeScope(out, scope);
      for (const span of scopeSpans) {
        out.tag(2, LEN); // ScopeSpans.spans
        writeSpan(out, span);
      }
      if (scope.schemaUrl) {
        out.tag(3, LEN);
        out.string(scope.schemaUrl);
      }
      out.finish(scopeSpansStart);
    }
    if (resource.schemaUrl) {
      out.tag(3, LEN);
      out.string(resource.schemaUrl);
    }
    out.finish(resourceSpans);
  }
  // A copy (Buffer#slice would be a view): the scratch buffer is reused by the next export while
  // this one may still be sent or retried (forceFlush and shutdown export batches concurrently).
  return new Uint8Array(out.buf.subarray(0, out.pos));
}

const VARINT = 0;
const FIXED64 = 1;
const LEN = 2;
const FIXED32 = 5;
const SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE = 0x100;
const SPAN_FLAGS_CONTEXT_IS_REMOTE = 0x200;

function groupByResourceAndScope(spans: ReadableSpan[]): Map<Resource, Map<InstrumentationScope, ReadableSpan[]>> {
  const byResource = new Map<Resource, Map<InstrumentationScope, ReadableSpan[]>>();
  for (const span of spans) {
    let byScope = byResource.get(span.resource);
    if (!byScope) byResource.set(span.resource, (byScope = new Map()));
    const list = byScope.get(span.instrumentationScope);
    if (list) list.push(span);
    else byScope.set(span.instrumentationScope, [span]);
  }
  return byResource;
}

/** Span (opentelemetry/proto/trace/v1/trace.proto), fields 1-16 in the SDK serializer's order. */
function writeSpan(out: Writer, span: ReadableSpan): void {
  const start = out.start();
  const spanContext = span.spanContext();
  writeIdsAndState(out, spanContext);
  const parent = span.parentSpanContext;
  if (parent?.spanId) {
    out.tag(4, LEN);
    out.hexId(parent.spanId);
  }
  out.tag(5, LEN);
  out.cachedString(span.name);
  // The API's SpanKind starts at INTERNAL = 0; OTLP's at SPAN_KIND_UNSPECIFIED = 0.
  const kind = span.kind == null ? 0 : span.kind + 1;
  if (kind !== 0) {
    out.tag(6, VARINT);
    out.varint(kind);
  }
  out.tag(7, FIXED64);
  out.hrTime(span.startTime);
  out.tag(8, FIXED64);
  out.hrTime(span.endTime);
  writeAttributes(out, span.attributes, SPAN_ATTRIBUTES);
  out.tag(10, VARINT);
  out.varint(span.droppedAttributesCount);
  for (const event of span.events) writeEvent(out, event);
  out.tag(12, VARINT);
  out.varint(span.droppedEventsCount);
  for (const link of span.links) writeLink(out, link);
  out.tag(14, VARINT);
  out.varint(span.droppedLinksCount);
  out.tag(15, LEN); // Status: message (2), code (3)
  const status = out.start();
  if (span.status.message) {
    out.tag(2, LEN);
    out.string(span.status.message);
  }
  out.tag(3, VARINT);
  out.varint(span.status.code);
  out.finish(status);
  out.tag(16, FIXED32);
  out.fixed32(spanFlags(spanContext.traceFlags, parent?.isRemote));
  out.finish(start);
}

function spanFlags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE | (isRemote ? SPAN_FLAGS_CONTEXT_IS_REMOTE : 0);
}

function writeEvent(out: Writer, event: TimedEvent): void {
  out.tag(11, LEN);
  const start = out.start();
  out.tag(1, FIXED64);
  out.hrTime(event.time);
  out.tag(2, LEN);
  out.string(event.name);
  writeAttributes(out, event.attributes, 3);
  out.tag(4, VARINT);
  out.varint(event.droppedAttributesCount || 0);
  out.finish(start);
}

/** Fields 1-3 of a Span and of a Span.Link alike: trace_id, span_id, trace_state (when set). */
function writeIdsAndState(out: Writer, spanContext: SpanContext): void {
  out.tag(1, LEN);
  out.hexId(spanContext.traceId);
  out.tag(2, LEN);
  out.hexId(spanContext.spanId);
  const traceState = spanContext.traceState?.serialize();
  if (traceState) {
    out.tag(3, LEN);
    out.string(traceState);
  }
}

function writeLink(out: Writer, link: Link & { droppedAttributesCount?: number }): void {
  out.tag(13, LEN);
  const start = out.start();
  const linked = link.context;
  writeIdsAndState(out, linked);
  writeAttributes(out, link.attributes, 4);
  out.tag(5, VARINT);
  out.varint(link.droppedAttributesCount || 0);
  out.tag(6, FIXED32);
  out.fixed32(spanFlags(linked.traceFlags, linked.isRemote));
  out.finish(start);
}

function writeScope(out: Writer, scope: InstrumentationScope & { attributes?: Attributes; droppedAttributesCount?: number }): void {
  out.tag(1, LEN); // ScopeSpans.scope
  const start = out.start();
  out.tag(1, LEN);
  out.cachedString(scope.name);
  if (scope.version) {
    out.tag(2, LEN);
    out.cachedString(scope.version);
  }
  writeAttributes(out, scope.attributes, 3);
  if (scope.droppedAttributesCount) {
    out.tag(4, VARINT);
    out.varint(scope.droppedAttributesCount);
  }
  out.finish(start);
}

/**
 * Repeated KeyValue under `field`; a string, number or boolean value's encoding is cached, and so
 * is the whole encoding of a frozen set of them: the platform's spans share one frozen set per
 * method, protocol and code or per SQL text (recorded-span.ts), so most spans copy theirs at once.
 */
function writeAttributes(out: Writer, attributes: Attributes | undefined, field: number): void {
  if (!attributes) return;
  if (field === SPAN_ATTRIBUTES && Object.isFrozen(attributes)) {
    let encoded = encodedSets.get(attributes);
    if (encoded === undefined) {
      encoded = encodedSet(attributes);
      encodedSets.set(attributes, encoded);
    }
    if (encoded !== null) {
      out.raw(encoded);
      return;
    }
  }
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    const value = attributes[key];
    out.tag(field, LEN);
    const type = typeof value;
    if (type === "string" || type === "number" || type === "boolean") {
      out.bytes(encodedKeyValue(key, value as string | number | boolean));
      continue;
    }
    const start = out.start();
    writeKeyValue(out, key, value);
    out.finish(start);
  }
}

const SPAN_ATTRIBUTES = 9;

/** Frozen span attribute sets: their encoded KeyValues, or null when a value is not a scalar (an array can change inside a frozen set). */
const encodedSets = new WeakMap<Attributes, Uint8Array | null>();

function encodedSet(attributes: Attributes): Uint8Array | null {
  const scratch = new Writer(256);
  for (const key in attributes) {
    if (!Object.prototype.hasOwnProperty.call(attributes, key)) continue;
    const value = attributes[key];
    const type = typeof value;
    if (type !== "string" && type !== "number" && type !== "boolean") return null;
    scratch.tag(SPAN_ATTRIBUTES, LEN);
    const start = scratch.start();
    writeKeyValue(scratch, key, value);
    scratch.finish(start);
  }
  return scratch.buf.slice(0, scratch.pos);
}

/** KeyValue: key (1), value (2, AnyValue). */
function writeKeyValue(out: Writer, key: string, value: unknown): void {
  out.tag(1, LEN);
  out.string(key);
  out.tag(2, LEN);
  const start = out.start();
  writeAnyValue(out, value);
  out.finish(start);
}

const MIN_INT64 = -(2 ** 63);
const MAX_INT64 = 2 ** 63;

/** AnyValue: string (1), bool (2), int (3), double (4), array (5), kvlist (6), bytes (7). */
function writeAnyValue(out: Writer, value: unknown): void {
  if (typeof value === "string") {
    out.tag(1, LEN);
    out.string(value);
  } else if (typeof value === "boolean") {
    out.tag(2, VARINT);
    out.varint(value ? 1 : 0);
  } else if (typeof value === "number") {
    if (Number.isInteger(value) && value >= MIN_INT64 && value < MAX_INT64) {
      out.tag(3, VARINT);
      out.varint(value);
    } else {
      out.tag(4, FIXED64);
      out.double(value);
    }
  } else if (value instanceof Uint8Array) {
    out.tag(7, LEN);
    out.varint(value.length);
    out.raw(value);
  } else if (Array.isArray(value)) {
    out.tag(5, LEN); // ArrayValue.values (1)
    const array = out.start();
    for (const item of value) {
      out.tag(1, LEN);
      const itemStart = out.start();
      writeAnyValue(out, item);
      out.finish(itemStart);
    }
    out.finish(array);
  } else if (typeof value === "object" && value !== null) {
    out.tag(6, LEN); // KeyValueList.values (1)
    const list = out.start();
    for (const key in value) {
      if (!Object.prototype.hasOwnProperty.call(value, key)) continue;
      out.tag(1, LEN);
      const pair = out.start();
      writeKeyValue(out, key, (value as Record<string, unknown>)[key]);
      out.finish(pair);
    }
    out.finish(list);
  }
}

/**
 * The caches hold what a service's spans repeat. A value seen once (an error message, an id put
 * in an attribute) is encoded and cached like the rest; past the bound the cache starts over, so
 * a stream of distinct values costs a clear now and then, never unbounded memory.
 */
const CACHE_LIMIT = 4096;
const keyValues = new Map<string, Map<string | number | boolean, Uint8Array>>();
let keyValueCount = 0;
const strings = new Map<string, Uint8Array>();

function encodedKeyValue(key: string, value: string | number | boolean): Uint8Array {
  let byValue = keyValues.get(key);
  let encoded = byValue?.get(value);
  if (encoded) return encoded;
  if (keyValueCount >= CACHE_LIMIT) {
    keyValues.clear();
    keyValueCount = 0;
    byValue = undefined;
  }
  if (!byValue) keyValues.set(key, (byValue = new Map()));
  const scratch = new Writer(64 + 3 * (key.length + (typeof value === "string" ? value.length : 0)));
  writeKeyValue(scratch, key, value);
  encoded = scratch.buf.slice(0, scratch.pos);
  byValue.set(value, encoded);
  keyValueCount++;
  return encoded;
}

function encodedString(text: string): Uint8Array {
  let encoded = strings.get(text);
  if (encoded) return encoded;
  if (strings.size >= CACHE_LIMIT) strings.clear();
  encoded = Buffer.from(text, "utf8");
  strings.set(text, encoded);
  return encoded;
}

/** Hex digit values by character code; -1 for anything else. */
const HEX = new Int8Array(128).fill(-1);
for (let digit = 0; digit < 16; digit++) {
  HEX["0123456789abcdef".charCodeAt(digit)] = digit;
  HEX["0123456789ABCDEF".charCodeAt(digit)] = digit;
}

/** A protobuf writer over one growing buffer; length prefixes are reserved and patched. */
class Writer {
  buf: Buffer;
  pos = 0;
  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }
  private ensure(more: number): void {
    if (this.pos + more <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + more) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
  tag(field: number, wireType: number): void {
    this.varint((field << 3) | wireType);
  }
  varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    if (value >= 0 && value <= 0xffffffff) {
      let v = value >>> 0;
      while (v > 127) {
        buf[this.pos++] = (v & 127) | 128;
        v >>>= 7;
      }
      buf[this.pos++] = v;
      return;
    }
    // 64-bit two's complement, as int64 is written on the wire.
    const magnitude = Math.abs(value);
    let low = magnitude >>> 0;
    let high = (magnitude / 4294967296) >>> 0;
    if (value < 0) {
      low = ~low >>> 0;
      high = ~high >>> 0;
      low = (low + 1) >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    while (high > 0 || low > 127) {
      buf[this.pos++] = (low & 127) | 128;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    buf[this.pos++] = low & 127;
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
  /** [seconds, nanoseconds] as fixed64 nanoseconds, exactly (the sum exceeds 2^53). */
  hrTime(time: HrTime): void {
    const [seconds, nanos] = time;
    const lowSeconds = seconds % 65536;
    const highSeconds = Math.floor(seconds / 65536);
    const fromLow = lowSeconds * 1e9; // < 2^46: exact
    const fromHigh = highSeconds * 1e9; // to be multiplied by 2^16
    const low = (fromLow % 4294967296) + (fromHigh % 65536) * 65536 + nanos;
    const high = Math.floor(fromLow / 4294967296) + Math.floor(fromHigh / 65536) + Math.floor(low / 4294967296);
    this.ensure(8);
    this.buf.writeUInt32LE(low >>> 0, this.pos);
    this.buf.writeUInt32LE(high >>> 0, this.pos + 4);
    this.pos += 8;
  }
  /** A trace or span id: lowercase hex in the API, bytes on the wire. */
  hexId(hex: string): void {
    const length = hex.length >>> 1;
    this.varint(length);
    this.ensure(length);
    const buf = this.buf;
    for (let i = 0; i < length; i++) {
      buf[this.pos++] = (HEX[hex.charCodeAt(2 * i)]! << 4) | HEX[hex.charCodeAt(2 * i + 1)]!;
    }
  }
  string(text: string): void {
    const length = Buffer.byteLength(text, "utf8");
    this.varint(length);
    this.ensure(length);
    this.pos += this.buf.write(text, this.pos, length, "utf8");
  }
  cachedString(text: string): void {
    this.bytes(encodedString(text));
  }
  /** Length-prefixed bytes. */
  bytes(data: Uint8Array): void {
    this.varint(data.length);
    this.raw(data);
  }
  raw(data: Uint8Array): void {
    this.ensure(data.length);
    this.buf.set(data, this.pos);
    this.pos += data.length;
  }
  /** Reserves one byte for a length that finish() writes; most messages here are shorter than 128. */
  start(): number {
    this.ensure(1);
    return this.pos++;
  }
  finish(at: number): void {
    const length = this.pos - at - 1;
    if (length < 128) {
      this.buf[at] = length;
      return;
    }
    let size = 1;
    for (let v = length; v > 127; v >>>= 7) size++;
    this.ensure(size - 1);
    this.buf.copyWithin(at + size, at + 1, this.pos);
    this.pos += size - 1;
    let v = length;
    let p = at;
    while (v > 127) {
      this.buf[p++] = (v & 127) | 128;
      v >>>= 7;
    }
    this.buf[p] = v;
  }
}

const writer = new Writer(64 * 1024);
