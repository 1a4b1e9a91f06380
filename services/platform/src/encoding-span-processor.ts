import { context, diag, TraceFlags, type Context } from "@opentelemetry/api";
import { BindOnceFuture, ExportResultCode, globalErrorHandler, suppressTracing, type ExportResult, type InstrumentationScope } from "@opentelemetry/core";
import type { Resource } from "@opentelemetry/resources";
import type { ReadableSpan, Span, SpanProcessor } from "@opentelemetry/sdk-trace";
import { Writer, writeEncodedSpan, writeRequest } from "./otlp-protobuf.ts";

/** A batch's finished OTLP request and how many spans it holds. */
export interface EncodedSpanBatch {
  bytes: Uint8Array;
  spanCount: number;
}

/** Where finished requests go: the OTLP/HTTP transport with its retries, timeout and headers (telemetry.ts). */
export interface EncodedBatchExporter {
  export(batch: EncodedSpanBatch, done: (result: ExportResult) => void): void;
  shutdown(): Promise<void>;
}

/** BatchSpanProcessor's options, with its defaults; telemetry.ts reads them from OTEL_BSP_*. */
export interface BatchOptions {
  maxQueueSize?: number;
  maxExportBatchSize?: number;
  scheduledDelayMillis?: number;
  exportTimeoutMillis?: number;
}

/** Spans grouped as the request groups them, each scope's spans already encoded. */
type PendingBatch = { groups: Map<Resource, Map<InstrumentationScope, Writer>>; spanCount: number };

/**
 * BatchSpanProcessor's behaviour for the platform's OTLP protobuf exporter, with each span
 * encoded into its batch's bytes when it ends instead of kept until the batch is exported.
 * With every call sampled, the queued spans outlived V8's young generation (a batch waits up to
 * the schedule delay), so each was copied by the scavenger and promoted; encoded at its end, a
 * span dies young and the batch holds only its bytes. What BatchSpanProcessor does is kept:
 * sampled spans only; at most maxQueueSize spans pending, the rest dropped and counted (reported
 * through `diag` as BatchSpanProcessor does); a batch is exported when it reaches
 * maxExportBatchSize or after the schedule delay, one export at a time, each failed after the
 * export timeout; forceFlush and shutdown export everything pending, then shutdown stops the
 * exporter; exports run with tracing suppressed. The bytes are those the SDK's serializer writes
 * for the same spans in the same order (encoding-span-processor.spec.ts). A span's fields are read
 * once, at its end: a processor after this one that changes a span cannot change what is sent.
 */
export class EncodingSpanProcessor implements SpanProcessor {
  private readonly maxQueueSize: number;
  private maxExportBatchSize: number;
  private readonly scheduledDelayMillis: number;
  private readonly exportTimeoutMillis: number;
  private open: PendingBatch = newBatch();
  /** Batches that reached maxExportBatchSize, waiting for their export. */
  private readonly sealed: PendingBatch[] = [];
  /** Scope buffers of batches already sent, grown to a batch's size, reused by the next batches. */
  private readonly spareWriters: Writer[] = [];
  private pendingSpans = 0;
  private droppedSpans = 0;
  private exporting = false;
  private timer: NodeJS.Timeout | undefined;
  private readonly shutdownOnce: BindOnceFuture<void>;

  private readonly exporter: EncodedBatchExporter;

  constructor(exporter: EncodedBatchExporter, options: BatchOptions = {}) {
    this.exporter = exporter;
    this.maxQueueSize = options.maxQueueSize ?? 2048;
    this.maxExportBatchSize = options.maxExportBatchSize ?? 512;
    this.scheduledDelayMillis = options.scheduledDelayMillis ?? 5_000;
    this.exportTimeoutMillis = options.exportTimeoutMillis ?? 30_000;
    if (this.maxExportBatchSize > this.maxQueueSize) {
      diag.warn("EncodingSpanProcessor: maxExportBatchSize must be smaller or equal to maxQueueSize, setting maxExportBatchSize to match maxQueueSize");
      this.maxExportBatchSize = this.maxQueueSize;
    }
    this.shutdownOnce = new BindOnceFuture(this.stop, this);
  }

  onStart(_span: Span, _parent: Context): void {}

  onEnd(span: ReadableSpan): void {
    if (this.shutdownOnce.isCalled) return;
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    if (this.pendingSpans >= this.maxQueueSize) {
      if (this.droppedSpans === 0) diag.debug("maxQueueSize reached, dropping spans");
      this.droppedSpans++;
      return;
    }
    if (this.droppedSpans > 0) {
      diag.warn(`Dropped ${this.droppedSpans} spans because maxQueueSize reached`);
      this.droppedSpans = 0;
    }
    const open = this.open;
    let scopes = open.groups.get(span.resource);
    if (!scopes) open.groups.set(span.resource, (scopes = new Map()));
    let spans = scopes.get(span.instrumentationScope);
    if (!spans) scopes.set(span.instrumentationScope, (spans = this.spareWriters.pop() ?? new Writer(16 * 1024)));
    writeEncodedSpan(spans, span);
    open.spanCount++;
    this.pendingSpans++;
    if (open.spanCount >= this.maxExportBatchSize) {
      this.sealed.push(open);
      this.open = newBatch();
    }
    this.maybeStartTimer();
  }

  /** Spans dropped since the queue was last found with room (BatchSpanProcessor's count, reset when it reports them). */
  get droppedSpanCount(): number {
    return this.droppedSpans;
  }

  forceFlush(): Promise<void> {
    if (this.shutdownOnce.isCalled) return this.shutdownOnce.promise;
    return this.exportAll();
  }

  shutdown(): Promise<void> {
    return this.shutdownOnce.call();
  }

  private async stop(): Promise<void> {
    await this.exportAll();
    await this.exporter.shutdown();
  }

  private async exportAll(): Promise<void> {
    const batches = this.sealed.length + (this.open.spanCount > 0 ? 1 : 0);
    const exports: Promise<void>[] = [];
    for (let i = 0; i < batches; i++) exports.push(this.exportOneBatch());
    await Promise.all(exports);
  }

  private takeBatch(): PendingBatch | undefined {
    let batch = this.sealed.shift();
    if (!batch && this.open.spanCount > 0) {
      batch = this.open;
      this.open = newBatch();
    }
    if (batch) this.pendingSpans -= batch.spanCount;
    return batch;
  }

  private exportOneBatch(): Promise<void> {
    this.clearTimer();
    const batch = this.takeBatch();
    if (!batch) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error("Timeout")), this.exportTimeoutMillis);
      context.with(suppressTracing(context.active()), () => {
        const send = () => {
          const encoded = { bytes: writeRequest(batch.groups, writeScopeBytes), spanCount: batch.spanCount };
          this.recycle(batch);
          this.exporter.export(encoded, (result) => {
            clearTimeout(timer);
            if (result.code === ExportResultCode.SUCCESS) resolve();
            else reject(result.error ?? new Error("EncodingSpanProcessor: span export failed"));
          });
        };
        // The resource is written when the batch is sent, so attributes a detector adds later are in.
        const pending = [...batch.groups.keys()].filter((resource) => resource.asyncAttributesPending && resource.waitForAsyncAttributes);
        if (pending.length === 0) send();
        else
          Promise.all(pending.map((resource) => resource.waitForAsyncAttributes!())).then(send, (error: unknown) => {
            globalErrorHandler(error as Error);
            reject(error);
          });
      });
    });
  }

  private recycle(batch: PendingBatch): void {
    for (const scopes of batch.groups.values()) {
      for (const spans of scopes.values()) {
        spans.pos = 0;
        if (this.spareWriters.length < MAX_SPARE_WRITERS) this.spareWriters.push(spans);
      }
    }
  }

  private maybeStartTimer(): void {
    if (this.exporting) return;
    const flush = () => {
      this.exporting = true;
      this.exportOneBatch()
        .finally(() => {
          this.exporting = false;
          if (this.pendingSpans > 0) {
            this.clearTimer();
            this.maybeStartTimer();
          }
        })
        .catch((error: unknown) => {
          this.exporting = false;
          globalErrorHandler(error as Error);
        });
    };
    if (this.sealed.length > 0) return flush();
    if (this.timer !== undefined) return;
    this.timer = setTimeout(flush, this.scheduledDelayMillis);
    this.timer.unref();
  }

  private clearTimer(): void {
    if (this.timer === undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
  }
}

/** Enough for the scopes of a few batches in flight; a scope seen once does not keep its buffer. */
const MAX_SPARE_WRITERS = 16;

function newBatch(): PendingBatch {
  return { groups: new Map(), spanCount: 0 };
}

function writeScopeBytes(out: Writer, spans: Writer): void {
  out.raw(spans.buf.subarray(0, spans.pos));
}
