import assert from "node:assert/strict";
import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags, type Attributes } from "@opentelemetry/api";
import { ExportResultCode, TraceState, type ExportResult } from "@opentelemetry/core";
import { ProtobufTraceSerializer } from "@opentelemetry/otlp-transformer";
import { resourceFromAttributes } from "@opentelemetry/resources";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  InMemorySpanExporter,
  SimpleSpanProcessor,
  TracerProvider,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace";
import { EncodingSpanProcessor, type BatchOptions, type EncodedSpanBatch } from "../../src/encoding-span-processor.ts";

/** Records what it is asked to export; holds each export's completion while `hold` is set. */
class RecordingExporter {
  readonly batches: Buffer[] = [];
  readonly spanCounts: number[] = [];
  readonly held: (() => void)[] = [];
  hold = false;
  shutdowns = 0;
  protected record(bytes: Uint8Array, spanCount: number, done: (result: ExportResult) => void): void {
    this.batches.push(Buffer.from(bytes));
    this.spanCounts.push(spanCount);
    const finish = () => done({ code: ExportResultCode.SUCCESS });
    if (this.hold) this.held.push(finish);
    else setImmediate(finish);
  }
  release(): void {
    this.hold = false;
    for (const finish of this.held.splice(0)) finish();
  }
  async shutdown(): Promise<void> {
    this.shutdowns++;
  }
}

/** The platform's path: the bytes the processor encoded as the spans ended. */
class BytesExporter extends RecordingExporter {
  export(batch: EncodedSpanBatch, done: (result: ExportResult) => void): void {
    this.record(batch.bytes, batch.spanCount, done);
  }
}

/** The SDK's path: BatchSpanProcessor's span objects, encoded by the SDK's serializer when exported. */
class SpanObjectExporter extends RecordingExporter implements SpanExporter {
  export(spans: ReadableSpan[], done: (result: ExportResult) => void): void {
    this.record(ProtobufTraceSerializer.serializeRequest(spans)!, spans.length, done);
  }
}

const RESOURCES = ["presence", "orders"].map((service) =>
  resourceFromAttributes({ "service.name": service, "process.pid": 4242, "host.arch": "amd64", "process.command_args": ["node", "main.mjs"] }),
);

function providerFor(processors: SpanProcessor[], resource = RESOURCES[0]!, sampler = new AlwaysOnSampler()): TracerProvider {
  return new TracerProvider({ resource, sampler, spanProcessors: processors });
}

/** Finished spans as a processor receives them, recorded once so both paths get the very same ones. */
function record(end: (processors: SpanProcessor[]) => void): ReadableSpan[] {
  const exporter = new InMemorySpanExporter();
  end([new SimpleSpanProcessor({ exporter })]);
  return exporter.getFinishedSpans();
}

function endAll(processor: SpanProcessor, spans: ReadableSpan[]): void {
  for (const span of spans) processor.onEnd(span);
}

/** Spans of two resources and several scopes, interleaved, with every field the OTLP Span has. */
function endSpans(processors: SpanProcessor[]): void {
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
  const tracers = RESOURCES.map((resource) => providerFor(processors, resource)).map((provider) => ({
    rpc: provider.getTracer("@meshwork/platform/rpc", "1.2.3"),
    db: provider.getTracer("@meshwork/platform/db"),
  }));
  for (let call = 0; call < 3; call++) {
    for (const { rpc, db } of tracers) {
      const server = rpc.startSpan("meshwork.presence.v1.PresenceService/GetOnlineCount", { kind: SpanKind.SERVER, attributes: { "rpc.system": "grpc", call } }, remoteParent);
      const inServer = trace.setSpan(context.active(), server);
      db.startSpan("select sessions", { kind: SpanKind.CLIENT, attributes: { "db.query.text": 'select count(*) as "count" from "sessions"' } }, inServer).end();
      const failing = db.startSpan("insert sessions", { kind: SpanKind.CLIENT }, inServer);
      failing.setStatus({ code: SpanStatusCode.ERROR, message: "SqliteError: UNIQUE constraint failed — ünïcödé ✓" });
      failing.end();
      server.setAttributes({ negative: -17, big: 2 ** 60, ratio: 0.25, list: ["a", "b"], emoji: "📦" });
      server.addEvent("message", { "message.type": "SENT", "message.id": call });
      server.addLink({ context: { traceId: "4bf92f3577b34da6a3ce929d0e0e4736", spanId: "00f067aa0ba902b7", traceFlags: TraceFlags.SAMPLED, isRemote: true }, attributes: { "messaging.system": "nats" } });
      server.end();
    }
  }
  // Over 16 KiB in one span: length prefixes of three bytes.
  tracers[0]!.rpc.startSpan("big", { attributes: { payload: "x".repeat(20_000) } }).end();
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

/** The same spans through BatchSpanProcessor (SDK serializer) and EncodingSpanProcessor, with the same settings. */
async function bothPaths(options: BatchOptions, scenario: (processor: SpanProcessor, exporter: RecordingExporter) => Promise<void>) {
  const sdk = new SpanObjectExporter();
  const sdkProcessor = new BatchSpanProcessor({ exporter: sdk, ...options });
  await scenario(sdkProcessor, sdk);
  const platform = new BytesExporter();
  const platformProcessor = new EncodingSpanProcessor(platform, options);
  await scenario(platformProcessor, platform);
  return { sdk, platform, platformProcessor };
}

describe("EncodingSpanProcessor (encoding-span-processor.ts)", () => {
  it("sends the bytes BatchSpanProcessor with the SDK's serializer sends, for spans of two resources and several scopes", async () => {
    const spans = record(endSpans);
    const { sdk, platform } = await bothPaths({ scheduledDelayMillis: 60_000 }, async (processor) => {
      endAll(processor, spans);
      await processor.forceFlush();
    });
    assert.equal(sdk.batches.length, 1);
    assert.ok(sdk.batches[0]!.length > 20_000);
    assert.deepEqual(platform.batches, sdk.batches);
    assert.deepEqual(platform.spanCounts, [19]);
  });

  it("splits at maxExportBatchSize, exporting a full batch at once, without waiting for the schedule delay", async () => {
    const spans = record(endSpans);
    const { sdk, platform } = await bothPaths({ scheduledDelayMillis: 60_000, maxExportBatchSize: 4, maxQueueSize: 64 }, async (processor, exporter) => {
      endAll(processor, spans);
      await settle();
      // 19 spans: the full batches went out as they filled, one export at a time; the rest waits.
      assert.ok(exporter.batches.length >= 1, "a full batch is exported without waiting for the delay");
      await processor.forceFlush();
    });
    assert.deepEqual(platform.spanCounts, [4, 4, 4, 4, 3]);
    assert.deepEqual(platform.batches, sdk.batches);
  });

  it("drops and counts spans past maxQueueSize while an export is in flight, as BatchSpanProcessor does", async () => {
    const spans = record((processors) => {
      const tracer = providerFor(processors).getTracer("queue");
      for (let i = 0; i < 9; i++) tracer.startSpan(`span ${i}`).end();
    });
    const { sdk, platform, platformProcessor } = await bothPaths({ scheduledDelayMillis: 60_000, maxExportBatchSize: 2, maxQueueSize: 4 }, async (processor, exporter) => {
      exporter.hold = true;
      // The first 2 fill a batch, which is exported and held; 4 more fill the queue; 3 are dropped.
      endAll(processor, spans);
      if (processor instanceof EncodingSpanProcessor) assert.equal(processor.droppedSpanCount, 3);
      assert.equal(exporter.batches.length, 1);
      exporter.release();
      await processor.forceFlush();
    });
    assert.deepEqual(platform.spanCounts, [2, 2, 2]);
    assert.deepEqual(platform.batches, sdk.batches);
    // The next span that finds room reports the drops (through diag) and starts the count over.
    providerFor([platformProcessor]).getTracer("queue").startSpan("after").end();
    assert.equal(platformProcessor.droppedSpanCount, 0);
    await platformProcessor.forceFlush();
    assert.deepEqual(platform.spanCounts, [2, 2, 2, 1]);
  });

  it("exports on the schedule delay what did not fill a batch", async () => {
    const exporter = new BytesExporter();
    const processor = new EncodingSpanProcessor(exporter, { scheduledDelayMillis: 20 });
    const tracer = providerFor([processor]).getTracer("delay");
    tracer.startSpan("one").end();
    tracer.startSpan("two").end();
    await settle();
    assert.equal(exporter.batches.length, 0);
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.deepEqual(exporter.spanCounts, [2]);
  });

  it("exports everything pending on shutdown, then shuts the exporter down and takes no more spans", async () => {
    const spans = record(endSpans);
    const { sdk, platform, platformProcessor } = await bothPaths({ scheduledDelayMillis: 60_000, maxExportBatchSize: 8, maxQueueSize: 64 }, async (processor, exporter) => {
      exporter.hold = true;
      endAll(processor, spans);
      exporter.release();
      await processor.shutdown();
      assert.equal(exporter.shutdowns, 1);
    });
    assert.deepEqual(platform.spanCounts, [8, 8, 3]);
    assert.deepEqual(platform.batches, sdk.batches);
    providerFor([platformProcessor]).getTracer("late").startSpan("after shutdown").end();
    await platformProcessor.forceFlush();
    assert.equal(platform.batches.length, 3);
  });

  it("fails a flush whose export does not complete within the export timeout", async () => {
    const exporter = new BytesExporter();
    exporter.hold = true;
    const processor = new EncodingSpanProcessor(exporter, { scheduledDelayMillis: 60_000, exportTimeoutMillis: 30 });
    providerFor([processor]).getTracer("timeout").startSpan("slow").end();
    await assert.rejects(processor.forceFlush(), /Timeout/);
    exporter.release();
  });

  it("takes only sampled spans", async () => {
    const exporter = new BytesExporter();
    const processor = new EncodingSpanProcessor(exporter, { scheduledDelayMillis: 60_000 });
    providerFor([processor], RESOURCES[0], new AlwaysOffSampler()).getTracer("unsampled").startSpan("dropped").end();
    await processor.forceFlush();
    assert.equal(exporter.batches.length, 0);
  });

  it("sends a span as it was when it ended: a later change to it cannot change what was encoded", async () => {
    const exporter = new BytesExporter();
    const processor = new EncodingSpanProcessor(exporter, { scheduledDelayMillis: 60_000 });
    const recorded = new InMemorySpanExporter();
    const tracer = providerFor([processor, new SimpleSpanProcessor({ exporter: recorded })]).getTracer("mutation");
    const attributes: Attributes = { "rpc.method": "GetOnlineCount" };
    tracer.startSpan("before", { attributes }).end();
    const [span] = recorded.getFinishedSpans();
    const atEnd = Buffer.from(ProtobufTraceSerializer.serializeRequest([span!])!);
    // What a later processor (or code holding the span) could do to the object after its end.
    (span!.attributes as Attributes)["rpc.method"] = "Changed";
    (span as { name: string }).name = "after";
    span!.status.code = SpanStatusCode.ERROR;
    assert.notDeepEqual(Buffer.from(ProtobufTraceSerializer.serializeRequest([span!])!), atEnd);
    await processor.forceFlush();
    assert.deepEqual(exporter.batches, [atEnd]);
  });
});
