import assert from "node:assert/strict";
import {
  diag,
  DiagLogLevel,
  ROOT_CONTEXT,
  SamplingDecision,
  SpanKind,
  SpanStatusCode,
  trace,
  TraceFlags,
  type Attributes,
  type Context,
  type Sampler,
  type Span,
} from "@opentelemetry/api";
import { suppressTracing, TraceState } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, type ReadableSpan, type SpanProcessor } from "@opentelemetry/sdk-trace";
import { serializeTraceExportRequest } from "../../src/otlp-protobuf.ts";
import { platformTracer, RecordedSpan, setSpanPipeline, SPAN_LIMITS } from "../../src/recorded-span.ts";
import { setSamplingPolicy } from "../../src/tracing-policy.ts";
import { finishedSpans, installTestTracing, pipeline, spanExporter, useSampler } from "../support/tracing.ts";

/**
 * The span the platform builds for its hot paths (recorded-span.ts) must be, to everything that
 * reads it, the span the SDK's tracer would have built: each test runs the same calls on a span
 * from the SDK's tracer and on one from the platform's tracer, both under the test provider's
 * sampler and processor, and compares what the processor received.
 */
describe("the platform's recorded span, against the SDK's span", () => {
  const SCOPE = "@meshwork/test/recorded-span";
  const sdkTracer = () => trace.getTracer(SCOPE);
  const platform = platformTracer(SCOPE);
  const START: Attributes = Object.freeze({ "rpc.system": "grpc", "rpc.service": "meshwork.presence.v1.PresenceService", "rpc.method": "GetOnlineCount", retries: 0, sampled: true });
  const PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c";
  const PARENT_SPAN = "b7ad6b7169203331";
  const parent = (sampled: boolean): Context =>
    trace.setSpan(
      ROOT_CONTEXT,
      trace.wrapSpanContext({ traceId: PARENT_TRACE, spanId: PARENT_SPAN, traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true, traceState: new TraceState("vendor=kept") }),
    );

  before(() => installTestTracing());
  beforeEach(() => {
    spanExporter.reset();
    useSampler(new AlwaysOnSampler(), "independent");
  });
  after(() => setSamplingPolicy("independent"));

  /** Starts one span from each tracer, runs `write` on each, and returns both as exported (SDK's first). */
  async function both(write: (span: Span) => void, options: { parent?: Context; attributes?: Attributes; kind?: SpanKind } = {}) {
    const { parent: under = ROOT_CONTEXT, attributes = START, kind = SpanKind.SERVER } = options;
    const spans = [sdkTracer().startSpan("op", { kind, attributes }, under), platform.startSpan("op", kind, attributes, under)] as const;
    for (const span of spans) write(span);
    const exported = await finishedSpans();
    return { spans, exported };
  }

  /** Every field an exporter reads, with the span's own ids and clock taken out (they differ by design). */
  function view(span: ReadableSpan) {
    const since = (time: [number, number]) => (time[0] - span.startTime[0]) * 1e9 + (time[1] - span.startTime[1]);
    const { traceFlags, traceState, isRemote } = span.spanContext();
    return {
      name: span.name,
      kind: span.kind,
      traceFlags,
      traceState: traceState?.serialize(),
      isRemote,
      parentSpanContext: span.parentSpanContext,
      attributes: { ...span.attributes },
      droppedAttributesCount: span.droppedAttributesCount,
      events: span.events.map((event) => ({ name: event.name, attributes: event.attributes, droppedAttributesCount: event.droppedAttributesCount })),
      droppedEventsCount: span.droppedEventsCount,
      links: span.links,
      droppedLinksCount: span.droppedLinksCount,
      status: span.status,
      ended: span.ended,
      durationMatchesEnd: since(span.endTime) === span.duration[0] * 1e9 + span.duration[1],
      resource: span.resource === pipeline.resource,
      scope: { name: span.instrumentationScope.name, version: span.instrumentationScope.version, schemaUrl: span.instrumentationScope.schemaUrl },
    };
  }

  it("exports the same fields as the SDK's span for the same writes", async () => {
    const failure = Object.assign(new Error("constraint failed"), { code: "SQLITE_CONSTRAINT" });
    const { spans, exported } = await both((span) => {
      span.setAttribute("rpc.grpc.status_code", 0);
      span.setAttribute("rpc.method", "Overwritten");
      span.setAttributes({ list: ["a", "b"], ratio: 0.25, skipped: undefined, invalid: (() => 1) as never, "": "empty key" });
      span.addEvent("message", { "message.type": "SENT", "message.id": 1, nested: { no: 1 } as never });
      span.addEvent("at a date", new Date(1_700_000_000_123));
      span.addLink({ context: { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED }, attributes: { "messaging.system": "nats" } });
      span.addLinks([{ context: { traceId: "4bf92f3577b34da6a3ce929d0e0e4737", spanId: "00f067aa0ba902b8", traceFlags: TraceFlags.NONE } }]);
      span.recordException(failure);
      span.recordException("plain message");
      span.setStatus({ code: SpanStatusCode.UNSET });
      span.setStatus({ code: SpanStatusCode.ERROR, message: "gone" });
      span.updateName("renamed");
      span.end();
    });
    assert.equal(exported.length, 2);
    assert.ok(exported[1] instanceof RecordedSpan, "the second span is the platform's");
    assert.deepEqual(view(exported[1]!), view(exported[0]!));
    assert.deepEqual(exported[1]!.events[1]!.time, exported[0]!.events[1]!.time, "an event at a given date");
    const [sdkException, platformException] = exported.map((span) => span.events[2]!.attributes);
    assert.deepEqual(platformException, sdkException);
    assert.equal(platformException?.["exception.type"], "SQLITE_CONSTRAINT");
    assert.ok(String(platformException?.["exception.stacktrace"]).includes("constraint failed"));
    // The start set was written to on the platform's span: a copy was written, never the shared set.
    assert.equal(START["rpc.method"], "GetOnlineCount");
    assert.notEqual(spans[1].spanContext().spanId, spans[0].spanContext().spanId);
  });

  it("starts every span of a frozen set with one shared set, checked once, until a write", async () => {
    const first = platform.startSpan("op", SpanKind.CLIENT, START, ROOT_CONTEXT) as RecordedSpan;
    const second = platform.startSpan("op", SpanKind.CLIENT, START, ROOT_CONTEXT) as RecordedSpan;
    assert.equal(first.attributes, second.attributes, "shared, not copied per span");
    assert.ok(Object.isFrozen(first.attributes));
    assert.deepEqual(first.attributes, START);
    const shared = first.attributes;
    second.setAttribute("extra", 1);
    assert.notEqual(second.attributes, shared);
    assert.deepEqual(shared, START, "the shared set is never written");
    assert.deepEqual(second.attributes, { ...START, extra: 1 });
    first.end();
    second.end();
    const exported = await finishedSpans();
    assert.deepEqual(exported[0]!.attributes, START);
  });

  it("shares the union of its start set and a frozen set written to it, as the SDK would have written them", async () => {
    const END: Attributes = Object.freeze({ "rpc.grpc.status_code": 0, "rpc.method": "Overwritten", "rpc.response.status_code": "ok" });
    const { exported } = await both((span) => {
      span.setAttributes(END);
      span.end();
    });
    assert.deepEqual(view(exported[1]!), view(exported[0]!));
    const second = platform.startSpan("op", SpanKind.SERVER, START, ROOT_CONTEXT) as RecordedSpan;
    second.setAttributes(END);
    assert.equal(second.attributes, exported[1]!.attributes, "one union for every span");
    assert.ok(Object.isFrozen(second.attributes));
    second.setAttribute("later", 1);
    assert.deepEqual(second.attributes, { ...START, ...END, later: 1 }, "a write after it copies the union");
    second.end();
    // A set written to a span at its attribute count limit: dropped and counted, as the SDK does.
    spanExporter.reset();
    const many: Attributes = Object.freeze(Object.fromEntries(Array.from({ length: SPAN_LIMITS.attributeCountLimit }, (_, i) => [`key.${i}`, i])));
    const full = await both(
      (span) => {
        span.setAttributes(Object.freeze({ "one.more": 1, "key.0": "overwritten" }));
        span.end();
      },
      { attributes: many },
    );
    assert.deepEqual(view(full.exported[1]!), view(full.exported[0]!));
    assert.equal(full.exported[1]!.droppedAttributesCount, 1);
    assert.equal(full.exported[1]!.attributes["key.0"], "overwritten");
    // A set with a value the SDK drops takes the per-key path, with the SDK's outcome.
    spanExporter.reset();
    const dropping = await both((span) => {
      span.setAttributes(Object.freeze({ kept: "yes", skipped: undefined, invalid: (() => 1) as never }));
      span.end();
    });
    assert.deepEqual(view(dropping.exported[1]!), view(dropping.exported[0]!));
    assert.equal(dropping.exported[1]!.attributes["kept"], "yes");
    assert.equal("invalid" in dropping.exported[1]!.attributes, false);
  });

  it("starts under its parent's trace with the parent's trace state, and a root span in a new trace", async () => {
    const child = await both((span) => span.end(), { parent: parent(true), kind: SpanKind.CLIENT });
    assert.deepEqual(view(child.exported[1]!), view(child.exported[0]!));
    for (const span of child.exported) {
      assert.equal(span.spanContext().traceId, PARENT_TRACE);
      assert.equal(span.parentSpanContext?.spanId, PARENT_SPAN);
      assert.equal(span.parentSpanContext?.isRemote, true);
      assert.equal(span.spanContext().traceState?.get("vendor"), "kept");
      assert.match(span.spanContext().spanId, /^[0-9a-f]{16}$/);
    }
    spanExporter.reset();
    const root = await both((span) => span.end());
    assert.deepEqual(view(root.exported[1]!), view(root.exported[0]!));
    const [sdkRoot, platformRoot] = root.exported.map((span) => span.spanContext());
    assert.equal(root.exported[1]!.parentSpanContext, undefined);
    assert.match(platformRoot!.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(platformRoot!.traceId, sdkRoot!.traceId);
    assert.notEqual(platformRoot!.traceId, PARENT_TRACE);
  });

  it("asks the configured sampler with what the SDK gives it, and honours its decision", async () => {
    const asked: unknown[][] = [];
    const stateful: Sampler = {
      shouldSample: (context, traceId, name, kind, attributes, links) => {
        asked.push([traceId, trace.getSpanContext(context)?.spanId, name, kind, { ...attributes }, links]);
        return { decision: SamplingDecision.RECORD_AND_SAMPLED, attributes: { "sampler.rule": "all" }, traceState: new TraceState("sampler=yes") };
      },
    };
    useSampler(stateful, "independent");
    const decided = await both((span) => span.end(), { parent: parent(true) });
    assert.deepEqual(asked[1], asked[0], "the same question");
    assert.deepEqual(asked[0]!.slice(0, 4), [PARENT_TRACE, PARENT_SPAN, "op", SpanKind.SERVER]);
    assert.deepEqual(view(decided.exported[1]!), view(decided.exported[0]!));
    assert.equal(decided.exported[1]!.attributes["sampler.rule"], "all");
    assert.equal(decided.exported[1]!.spanContext().traceState?.get("sampler"), "yes");

    for (const [sampler, under] of [
      [new AlwaysOffSampler(), ROOT_CONTEXT],
      [new ParentBasedSampler({ root: new AlwaysOnSampler() }), parent(false)],
    ] as const) {
      useSampler(sampler, "independent");
      spanExporter.reset();
      const recordingBeforeEnd: boolean[] = [];
      const { spans, exported } = await both(
        (span) => {
          recordingBeforeEnd.push(span.isRecording());
          span.end();
        },
        { parent: under },
      );
      assert.deepEqual(exported, [], `${sampler.toString()}: nothing recorded`);
      assert.deepEqual(recordingBeforeEnd, [false, false], "the span the SDK returns for NOT_RECORD: never recording");
      assert.equal(spans[1] instanceof RecordedSpan, false);
      for (const span of spans) assert.equal(span.spanContext().traceFlags, TraceFlags.NONE);
      if (under !== ROOT_CONTEXT) {
        assert.equal(spans[1].spanContext().traceId, PARENT_TRACE);
        assert.equal(spans[1].spanContext().traceState?.get("vendor"), "kept");
      }
    }
  });

  it("records nothing in a context where tracing is suppressed", async () => {
    const { spans, exported } = await both((span) => span.end(), { parent: suppressTracing(parent(true)) });
    assert.deepEqual(exported, []);
    assert.deepEqual(spans[1].spanContext(), spans[0].spanContext());
    assert.equal(trace.isSpanContextValid(spans[1].spanContext()), false);
  });

  it("ends once, and ignores every write after its end", async () => {
    const errors: string[] = [];
    const warnings: string[] = [];
    diag.setLogger({ error: (m) => void errors.push(m), warn: (m) => void warnings.push(m), info: () => {}, debug: () => {}, verbose: () => {} }, DiagLogLevel.WARN);
    try {
      const { spans, exported } = await both((span) => {
        span.end();
        span.end();
        span.setAttribute("late", 1);
        span.setAttributes({ later: 2 });
        span.addEvent("late");
        span.addLink({ context: { traceId: PARENT_TRACE, spanId: PARENT_SPAN, traceFlags: TraceFlags.SAMPLED } });
        span.setStatus({ code: SpanStatusCode.ERROR, message: "late" });
        span.updateName("late");
      });
      assert.equal(exported.length, 2, "each span reaches the processor once");
      assert.deepEqual(view(exported[1]!), view(exported[0]!));
      assert.deepEqual(exported[1]!.attributes, START);
      assert.equal(exported[1]!.status.code, SpanStatusCode.UNSET);
      assert.equal(spans[1].isRecording(), false);
      assert.equal(errors.length, 2, "a second end() is reported for both spans");
      assert.equal(errors[1], errors[0]!.replace(spans[0].spanContext().traceId, spans[1].spanContext().traceId).replace(spans[0].spanContext().spanId, spans[1].spanContext().spanId));
      assert.equal(warnings.filter((m) => m.startsWith("Cannot execute the operation on ended Span")).length, 14, "the second end and six late writes, on each span");
    } finally {
      diag.disable();
    }
  });

  it("hands the span to every configured processor in order, as the SDK's span does: onStart with the parent context, onEnding before it is ended, onEnd once", () => {
    const calls: string[][] = [];
    const spy = (name: string): SpanProcessor => ({
      onStart: (span, parentContext) => void calls.push([name, "start", String(span.isRecording()), String(parentContext === under)]),
      onEnding: (span) => void calls.push([name, "ending", String((span as RecordedSpan).ended)]),
      onEnd: (span) => void calls.push([name, "end", String(span.ended)]),
      forceFlush: async () => {},
      shutdown: async () => {},
    });
    const under = parent(true);
    setSpanPipeline({ ...pipeline, processors: [spy("first"), spy("second")] });
    try {
      const span = platform.startSpan("op", SpanKind.INTERNAL, START, under);
      span.end();
      span.end();
    } finally {
      setSpanPipeline(pipeline);
    }
    assert.deepEqual(calls, [
      ["first", "start", "true", "true"],
      ["second", "start", "true", "true"],
      ["first", "ending", "false"],
      ["second", "ending", "false"],
      ["first", "end", "true"],
      ["second", "end", "true"],
    ]);
  });

  it("keeps an OK status final, as the SDK does", async () => {
    const { exported } = await both((span) => {
      span.setStatus({ code: SpanStatusCode.OK });
      span.setStatus({ code: SpanStatusCode.ERROR, message: "after ok" });
      span.end();
    });
    assert.deepEqual(view(exported[1]!), view(exported[0]!));
    assert.deepEqual(exported[1]!.status, { code: SpanStatusCode.OK });
  });

  it("applies the same attribute, event and link limits and counts what it drops", async () => {
    const many: Attributes = Object.freeze(Object.fromEntries(Array.from({ length: SPAN_LIMITS.attributeCountLimit + 3 }, (_, i) => [`key.${i}`, i])));
    const { exported } = await both(
      (span) => {
        span.setAttribute("one.more", 1);
        span.setAttribute("key.0", "overwritten");
        for (let i = 0; i < SPAN_LIMITS.eventCountLimit + 2; i++) span.addEvent(`event ${i}`);
        for (let i = 0; i < SPAN_LIMITS.linkCountLimit + 1; i++) span.addLink({ context: { traceId: PARENT_TRACE, spanId: PARENT_SPAN, traceFlags: TraceFlags.SAMPLED }, attributes: { i } });
        span.end();
      },
      { attributes: many },
    );
    assert.deepEqual(view(exported[1]!), view(exported[0]!));
    assert.equal(exported[1]!.droppedAttributesCount, 4);
    assert.equal(exported[1]!.droppedEventsCount, 2);
    assert.equal(exported[1]!.events[0]!.name, "event 2");
    assert.equal(exported[1]!.droppedLinksCount, 1);
  });

  it("takes its times as the SDK does: a wall-clock start, the end measured from it", async () => {
    const before = Date.now();
    const { exported } = await both((span) => span.end());
    const after = Date.now();
    for (const span of exported) {
      const startMs = span.startTime[0] * 1e3 + span.startTime[1] / 1e6;
      assert.ok(startMs >= before && startMs <= after, `start ${startMs} within [${before}, ${after}]`);
      assert.ok(span.duration[0] >= 0 && span.duration[1] >= 0);
    }
    const performanceNow = await both((span) => span.end(performance.now()));
    const [sdk, ours] = performanceNow.exported.slice(-2);
    const endMs = (span: ReadableSpan) => span.endTime[0] * 1e3 + span.endTime[1] / 1e6;
    assert.ok(Math.abs(endMs(ours!) - endMs(sdk!)) < 50, "an end given as performance.now() maps to the same wall-clock time");
  });

  it("is encoded by the OTLP encoder into the bytes the SDK's serializer writes for it", async () => {
    const { exported } = await both(
      (span) => {
        span.setAttribute("rpc.grpc.status_code", 0);
        span.addEvent("message", { "message.id": 1 });
        span.setStatus({ code: SpanStatusCode.ERROR, message: "gone" });
        span.end();
      },
      { parent: parent(true) },
    );
    const platformSpan = exported[1]!;
    assert.deepEqual(Buffer.from(serializeTraceExportRequest([platformSpan])), Buffer.from(ProtobufTraceSerializer.serializeRequest([platformSpan])!));
  });
});
