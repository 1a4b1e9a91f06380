import assert from "node:assert/strict";
import { Code, ConnectError, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { context, trace, TraceFlags, type Attributes } from "@opentelemetry/api";
import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler } from "@opentelemetry/sdk-trace";
import { PresenceService } from "@meshwork/proto/meshwork/presence/v1/presence_pb.js";
import { rpcServerDuration } from "../../src/metrics.ts";
import { clientTelemetryInterceptor } from "../../src/rpc/client.ts";
import { serverTelemetryInterceptor } from "../../src/rpc/interceptors.ts";
import { setSamplingPolicy } from "../../src/tracing-policy.ts";
import { finishedSpans, installTestTracing, spanExporter, useSampler } from "../support/tracing.ts";

/**
 * The SERVER span and duration sample of every call (rpc/interceptors.ts), in particular when the
 * process's sampler cannot record the span: the span is then built without the SDK, and must carry
 * what the SDK's non-recording span would (ids under the caller's trace, for logs, events and
 * outgoing calls), while the duration is still recorded with the call's attributes.
 */
describe("the server telemetry interceptor", () => {
  const exporter = spanExporter;
  const use = useSampler;

  const durations: { value: number; attributes: Attributes }[] = [];
  const record = rpcServerDuration.record;

  before(() => {
    installTestTracing();
    rpcServerDuration.record = (value, attributes) => void durations.push({ value, attributes: attributes ?? {} });
  });
  after(() => {
    rpcServerDuration.record = record;
    setSamplingPolicy("independent");
  });
  beforeEach(() => {
    exporter.reset();
    durations.length = 0;
  });

  const CALLER_TRACE = "0af7651916cd43dd8448eb211c80319c";
  const CALLER_SPAN = "b7ad6b7169203331";
  /** One call through the interceptor; what the handler saw as its active span. */
  const call = async (headers: Record<string, string>, outcome: "ok" | ConnectError = "ok") => {
    const method = PresenceService.method.getOnlineCount;
    let seen: ReturnType<typeof trace.getActiveSpan>;
    const handler = async (): Promise<UnaryResponse> => {
      seen = trace.getActiveSpan();
      if (outcome !== "ok") throw outcome;
      return { stream: false, message: {}, method, service: PresenceService, header: new Headers(), trailer: new Headers() } as unknown as UnaryResponse;
    };
    const request = { stream: false, message: {}, method, service: PresenceService, requestMethod: "POST", url: "http://x/", signal: new AbortController().signal, header: new Headers(headers), contextValues: undefined } as unknown as UnaryRequest;
    await serverTelemetryInterceptor()(handler as never)(request).catch((error: unknown) => {
      if (error !== outcome) throw error;
    });
    await finishedSpans();
    return seen;
  };
  const traceparent = (sampled: boolean) => ({ traceparent: `00-${CALLER_TRACE}-${CALLER_SPAN}-0${sampled ? 1 : 0}`, tracestate: "vendor=kept" });

  it("with nothing to record: a span of its own under the caller's trace, not sampled, its trace state kept, nothing exported", async () => {
    use(new AlwaysOffSampler(), "never");
    const span = await call({ "content-type": "application/grpc", ...traceparent(true) });
    assert.ok(span, "the handler runs inside a span");
    const ids = span.spanContext();
    assert.equal(ids.traceId, CALLER_TRACE);
    assert.match(ids.spanId, /^[0-9a-f]{16}$/);
    assert.notEqual(ids.spanId, CALLER_SPAN);
    assert.notEqual(ids.spanId, "0000000000000000");
    assert.equal(ids.traceFlags, TraceFlags.NONE);
    assert.equal(ids.traceState?.get("vendor"), "kept");
    assert.equal(span.isRecording(), false);
    assert.deepEqual(exporter.getFinishedSpans(), []);
  });

  it("with nothing to record and no caller's trace: a new trace per call, as the SDK would start", async () => {
    use(new AlwaysOffSampler(), "never");
    const first = (await call({ "content-type": "application/proto" }))!.spanContext();
    const second = (await call({ "content-type": "application/proto" }))!.spanContext();
    assert.match(first.traceId, /^[0-9a-f]{32}$/);
    assert.notEqual(first.traceId, "0".repeat(32));
    assert.notEqual(first.traceId, second.traceId);
    assert.equal(first.traceFlags, TraceFlags.NONE);
  });

  it("under an unsampled caller with a parent-based sampler: not recorded either, ids as the SDK gives them", async () => {
    use(new ParentBasedSampler({ root: new AlwaysOnSampler() }), "follow-parent");
    const span = (await call({ "content-type": "application/grpc", ...traceparent(false) }))!;
    assert.equal(span.spanContext().traceId, CALLER_TRACE);
    assert.equal(span.isRecording(), false);
    assert.deepEqual(exporter.getFinishedSpans(), []);
  });

  it("records the duration with the call's service, method, protocol and code, recorded span or not", async () => {
    for (const [sampling, policy] of [[new AlwaysOffSampler(), "never"], [new AlwaysOnSampler(), "independent"]] as const) {
      use(sampling, policy);
      durations.length = 0;
      await call({ "content-type": "application/grpc" });
      await call({ "content-type": "application/proto" }, new ConnectError("gone", Code.NotFound));
      await call({ "content-type": "application/grpc" });
      assert.deepEqual(
        durations.map((sample) => sample.attributes),
        [
          { "rpc.service": "meshwork.presence.v1.PresenceService", "rpc.method": "GetOnlineCount", "rpc.protocol": "grpc", code: "ok" },
          { "rpc.service": "meshwork.presence.v1.PresenceService", "rpc.method": "GetOnlineCount", "rpc.protocol": "connect", code: "NotFound" },
          { "rpc.service": "meshwork.presence.v1.PresenceService", "rpc.method": "GetOnlineCount", "rpc.protocol": "grpc", code: "ok" },
        ],
        policy,
      );
      assert.ok(durations.every((sample) => sample.value >= 0 && Object.isFrozen(sample.attributes)), "frozen: the metrics SDK hashes each set once");
      assert.equal(durations[0]!.attributes, durations[2]!.attributes, "one attribute set per method, protocol and code");
    }
  });

  it("records a sampled call's SERVER span with its attributes and status, as a child of the caller", async () => {
    use(new ParentBasedSampler({ root: new AlwaysOnSampler() }), "follow-parent");
    await call({ "content-type": "application/proto", ...traceparent(true) }, new ConnectError("gone", Code.NotFound));
    const [span] = exporter.getFinishedSpans();
    assert.equal(span?.name, "meshwork.presence.v1.PresenceService/GetOnlineCount");
    assert.equal(span!.parentSpanContext?.spanId, CALLER_SPAN);
    assert.deepEqual(span!.attributes, {
      "rpc.system": "connect_rpc",
      "rpc.service": "meshwork.presence.v1.PresenceService",
      "rpc.method": "GetOnlineCount",
      "meshwork.rpc.protocol": "connect",
      "rpc.connect_rpc.error_code": "NotFound",
      "rpc.response.status_code": "NotFound",
    });
    assert.equal(span!.status.message, "gone");
  });

  /** One outgoing call through the client interceptor, under a caller's span; the headers it sent. */
  const outgoing = async (sampled: boolean, outcome: "ok" | ConnectError = "ok") => {
    const method = PresenceService.method.getOnlineCount;
    const header = new Headers();
    const request = { stream: false, message: {}, method, service: PresenceService, requestMethod: "POST", url: "http://presence/", signal: new AbortController().signal, header, contextValues: undefined } as unknown as UnaryRequest;
    let inside: ReturnType<typeof trace.getActiveSpan>;
    const send = async (): Promise<UnaryResponse> => {
      inside = trace.getActiveSpan();
      if (outcome !== "ok") throw outcome;
      return { stream: false, message: {}, method, service: PresenceService, header: new Headers(), trailer: new Headers() } as unknown as UnaryResponse;
    };
    const caller = trace.wrapSpanContext({ traceId: CALLER_TRACE, spanId: CALLER_SPAN, traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE });
    await context.with(trace.setSpan(context.active(), caller), () => clientTelemetryInterceptor()(send as never)(request)).catch((error: unknown) => {
      if (error !== outcome) throw error;
    });
    return { traceparent: header.get("traceparent"), inside, spans: await finishedSpans() };
  };

  it("records an outgoing call's CLIENT span under a sampled caller and sends its ids to the callee", async () => {
    use(new ParentBasedSampler({ root: new AlwaysOnSampler() }), "follow-parent");
    const { traceparent, inside, spans } = await outgoing(true, new ConnectError("refused", Code.Unavailable));
    assert.equal(spans.length, 1);
    const [span] = spans;
    assert.equal(span!.name, "meshwork.presence.v1.PresenceService/GetOnlineCount");
    assert.equal(span!.parentSpanContext?.spanId, CALLER_SPAN);
    assert.deepEqual(span!.attributes, { "rpc.system": "connect_rpc", "rpc.service": "meshwork.presence.v1.PresenceService", "rpc.method": "GetOnlineCount" });
    assert.equal(span!.status.message, "[unavailable] refused");
    assert.equal(traceparent, `00-${CALLER_TRACE}-${span!.spanContext().spanId}-01`);
    assert.equal(inside?.spanContext().spanId, span!.spanContext().spanId, "the call is sent inside its span");
  });

  it("under an unsampled caller, records no CLIENT span but still sends a span id of its own under the caller's trace", async () => {
    use(new ParentBasedSampler({ root: new AlwaysOnSampler() }), "follow-parent");
    const { traceparent, spans } = await outgoing(false);
    assert.deepEqual(spans, []);
    const [, traceId, spanId, flags] = traceparent!.split("-");
    assert.equal(traceId, CALLER_TRACE);
    assert.notEqual(spanId, CALLER_SPAN);
    assert.equal(flags, "00");
  });
});
