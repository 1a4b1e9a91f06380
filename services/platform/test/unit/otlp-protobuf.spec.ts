import assert from "node:assert/strict";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes } from "@opentelemetry/api";
import { TraceState } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { AlwaysOnSampler, InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { serializeTraceExportRequest } from "../../src/otlp-protobuf.ts";

/** Finished spans of two resources and several scopes, with every field the OTLP Span has. */
function recordSpans(): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  const providers = ["presence", "orders"].map(
    (service) =>
      new TracerProvider({
        resource: resourceFromAttributes({ "service.name": service, "process.pid": 4242, "host.arch": "amd64", "process.command_args": ["node", "main.mjs"] }),
        sampler: new AlwaysOnSampler(),
        spanProcessors: [new SimpleSpanProcessor({ exporter })],
      }),
  );
  const remoteParent = trace.setSpan(
    ROOT_CONTEXT,
    trace.wrapSpanContext({
      traceId: "0af7651916cd43dd8448eb211c80319c",
      spanId: "b7ad6b7169203331",
      traceFlags: TraceFlags.SAMPLED,
      isRemote: true,
      traceState: new TraceState("vendor=value,other=1"),
    }),
  );
  for (const provider of providers) {
    const rpc = provider.getTracer("@meshwork/platform/rpc", "1.2.3");
    const db = provider.getTracer("@meshwork/platform/db");
    const server = rpc.startSpan(
      "meshwork.presence.v1.PresenceService/GetOnlineCount",
      { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", "rpc.service": "meshwork.presence.v1.PresenceService", "rpc.method": "GetOnlineCount" } },
      remoteParent,
    );
    const inServer = trace.setSpan(context.active(), server);
    for (let statement = 0; statement < 3; statement++) {
      db.startSpan(`select sessions ${statement % 2}`, { kind: SpanKind.CLIENT, attributes: { "db.system.name": "sqlite", "db.query.text": 'select count(*) as "count" from "sessions"' } }, inServer).end();
    }
    const failing = db.startSpan("insert sessions", { kind: SpanKind.CLIENT }, inServer);
    failing.setStatus({ code: SpanStatusCode.ERROR, message: "SqliteError: UNIQUE constraint failed — ünïcödé ✓" });
    failing.end();
    server.setAttribute("rpc.grpc.status_code", 0);
    server.setAttribute("rpc.response.status_code", "ok");
    server.setAttributes({ negative: -17, big: 2 ** 60, ratio: 0.25, huge: 1e300, flag: false, list: ["a", "b"], numbers: [1, 2.5], empty: "", emoji: "📦" });
    server.addEvent("message", { "message.type": "SENT", "message.id": 1 });
    server.addLink({ context: { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED, isRemote: true }, attributes: { "messaging.system": "nats" } });
    server.end();
    // Over 16 KiB in one span: length prefixes of three bytes.
    rpc.startSpan("big", { attributes: { payload: "x".repeat(20_000) } }).end();
    const producer = rpc.startSpan("publish", { kind: SpanKind.PRODUCER, root: true });
    producer.setStatus({ code: SpanStatusCode.OK });
    producer.end();
  }
  return exporter.getFinishedSpans();
}

describe("OTLP protobuf trace encoding (otlp-protobuf.ts)", () => {
  it("writes the same bytes as the SDK's serializer, on first use and from its caches", () => {
    const spans = recordSpans();
    const expected = ProtobufTraceSerializer.serializeRequest(spans)!;
    assert.ok(expected.length > 20_000);
    for (let pass = 0; pass < 3; pass++) assert.deepEqual(Buffer.from(serializeTraceExportRequest(spans)), Buffer.from(expected), `pass ${pass}`);
  });

  it("stays identical past its cache bound, with thousands of distinct attribute values", () => {
    const exporter = new InMemorySpanExporter();
    const provider = new TracerProvider({ sampler: new AlwaysOnSampler(), spanProcessors: [new SimpleSpanProcessor({ exporter })] });
    const tracer = provider.getTracer("cache");
    for (let i = 0; i < 6_000; i++) {
      const attributes: Attributes = { "user.id": `user-${i}`, sequence: i, odd: i % 2 === 1 };
      tracer.startSpan(`span ${i % 10}`, { attributes }).end();
    }
    const spans = exporter.getFinishedSpans();
    for (let from = 0; from < spans.length; from += 1_000) {
      const batch = spans.slice(from, from + 1_000);
      assert.deepEqual(Buffer.from(serializeTraceExportRequest(batch)), Buffer.from(ProtobufTraceSerializer.serializeRequest(batch)!));
    }
  });

  it("writes a frozen attribute set shared by many spans from one cached encoding, and nothing stale", () => {
    const spans = recordSpans();
    const shared: Attributes = Object.freeze({ "rpc.system": "grpc", "rpc.method": "GetOnlineCount", "rpc.grpc.status_code": 0, sampled: true, ratio: 0.5 });
    const list = ["a"];
    const withArray: Attributes = Object.freeze({ "db.system.name": "sqlite", list });
    // The same spans, each seen through a frozen set (a span object's other fields as they were).
    const frozen = spans.map((span, i) => Object.create(span, { attributes: { value: i % 3 === 2 ? withArray : shared } }) as ReadableSpan);
    for (let pass = 0; pass < 2; pass++) {
      assert.deepEqual(Buffer.from(serializeTraceExportRequest(frozen)), Buffer.from(ProtobufTraceSerializer.serializeRequest(frozen)!), `pass ${pass}`);
    }
    // A frozen set's array can still change: such a set is never taken from the cache.
    list.push("b");
    assert.deepEqual(Buffer.from(serializeTraceExportRequest(frozen)), Buffer.from(ProtobufTraceSerializer.serializeRequest(frozen)!));
  });

  it("returns bytes of their own, which the next export's encoding leaves as they were", () => {
    const spans = recordSpans();
    const first = serializeTraceExportRequest(spans.slice(0, 3));
    const firstAsEncoded = Buffer.from(first);
    serializeTraceExportRequest(spans.slice(3));
    assert.deepEqual(Buffer.from(first), firstAsEncoded, "an export still being sent or retried keeps its bytes");
  });

  it("is read back by a protobuf decoder: each span's ids, parent and name", () => {
    const spans = recordSpans();
    const decoded = decodeSpans(serializeTraceExportRequest(spans));
    assert.equal(decoded.length, spans.length);
    const hex = (bytes: Uint8Array | undefined) => Buffer.from(bytes ?? []).toString("hex");
    const byId = new Map(decoded.map((span) => [hex(span.spanId), span]));
    for (const span of spans) {
      const read = byId.get(span.spanContext().spanId);
      assert.ok(read, span.name);
      assert.equal(hex(read.traceId), span.spanContext().traceId);
      assert.equal(hex(read.parentSpanId), span.parentSpanContext?.spanId ?? "");
      assert.equal(read.name, span.name);
    }
  });
});

interface DecodedSpan {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  parentSpanId?: Uint8Array;
  name?: string;
}

/** ExportTraceServiceRequest.resource_spans(1) > ResourceSpans.scope_spans(2) > ScopeSpans.spans(2). */
function decodeSpans(request: Uint8Array): DecodedSpan[] {
  const spans: DecodedSpan[] = [];
  for (const resourceSpans of fields(request, 1)) {
    for (const scopeSpans of fields(resourceSpans, 2)) {
      for (const encoded of fields(scopeSpans, 2)) {
        const reader = new BinaryReader(encoded);
        const span: DecodedSpan = {};
        while (reader.pos < reader.len) {
          const [field, wireType] = reader.tag();
          if (field === 1) span.traceId = reader.bytes();
          else if (field === 2) span.spanId = reader.bytes();
          else if (field === 4) span.parentSpanId = reader.bytes();
          else if (field === 5) span.name = reader.string();
          else reader.skip(wireType);
        }
        spans.push(span);
      }
    }
  }
  return spans;
}

/** The length-delimited values of one field of a message. */
function fields(message: Uint8Array, wanted: number): Uint8Array[] {
  const reader = new BinaryReader(message);
  const found: Uint8Array[] = [];
  while (reader.pos < reader.len) {
    const [field, wireType] = reader.tag();
    if (field === wanted && wireType === WireType.LengthDelimited) found.push(reader.bytes());
    else reader.skip(wireType);
  }
  return found;
}
