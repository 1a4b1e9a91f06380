import { isSpanContextValid, trace, TraceFlags, type Span } from "@opentelemetry/api";
import { RandomIdGenerator } from "@opentelemetry/sdk-trace";

/**
 * What the process's sampler does with a span, as far as leaf spans (a database statement) need
 * to know: `never` records anything (no exporter, or `always_off`), `follow-parent` records a child
 * exactly when its parent records (the parent-based samplers), `independent` may record a child of
 * an unrecorded parent (`always_on`, `traceidratio`), and is the safe answer when unknown.
 */
export type SamplingPolicy = "never" | "follow-parent" | "independent";

let policy: SamplingPolicy = "independent";

/** Set by startTelemetry from the sampler it installs. */
export function setSamplingPolicy(next: SamplingPolicy): void {
  policy = next;
}

/**
 * False when a span started now, under `parent`, is certain not to be recorded. Then a leaf span
 * need not be built at all: its ids are never seen (it has no children and is not propagated), so
 * skipping it changes nothing observable, and saves its ids, attributes and context work on every
 * statement of a hot loop (bench/pipeline.ts). A span with children (the RPC SERVER span) still
 * needs ids to propagate, but not the SDK's sampling, attribute and bookkeeping work
 * (rpc/interceptors.ts builds it with `unrecordedSpan`).
 */
export function spanMayRecord(parent: Span | undefined): boolean {
  if (policy === "never") return false;
  if (policy === "follow-parent" && parent !== undefined) {
    // As ParentBasedSampler decides: by the parent's sampled flag when its context is valid.
    const parentContext = parent.spanContext();
    if (isSpanContextValid(parentContext)) return (parentContext.traceFlags & TraceFlags.SAMPLED) !== 0;
  }
  return true;
}

/** The trace and span ids of every span in the process (telemetry.ts gives it to the SDK too). */
export const spanIds = new RandomIdGenerator();

/**
 * The span the SDK's tracer returns when its sampler decides not to record (Tracer.startSpan with
 * a NOT_RECORD decision): a new span id under the parent's trace (a new trace id when there is no
 * valid parent), not sampled, the parent's trace state kept. For a span that must exist for its
 * children and logs, but that spanMayRecord says no sampler here will record.
 */
export function unrecordedSpan(parent: Span | undefined): Span {
  const parentContext = parent?.spanContext();
  const valid = parentContext !== undefined && isSpanContextValid(parentContext);
  return trace.wrapSpanContext({
    traceId: valid ? parentContext.traceId : spanIds.generateTraceId(),
    spanId: spanIds.generateSpanId(),
    traceFlags: TraceFlags.NONE,
    traceState: valid ? parentContext.traceState : undefined,
  });
}
