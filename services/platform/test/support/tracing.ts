import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { defaultResource } from "@opentelemetry/resources";
import { AlwaysOnSampler, InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type Sampler } from "@opentelemetry/sdk-trace";
import { setSpanPipeline, SPAN_LIMITS } from "../../src/recorded-span.ts";
import { setSamplingPolicy, spanIds, type SamplingPolicy } from "../../src/tracing-policy.ts";

/**
 * One tracer provider for every unit test in the process. The platform's modules hold tracers
 * from the global provider, and a tracer binds to the first provider it sees (`trace.disable()`
 * does not move it to the next one), so the provider is registered once and never swapped; the
 * sampler behind it is switched per test instead.
 */
export const spanExporter = new InMemorySpanExporter();
let sampler: Sampler = new AlwaysOnSampler();
const switchable: Sampler = { shouldSample: (...args) => sampler.shouldSample(...args), toString: () => `switchable(${sampler.toString()})` };
const processor = new SimpleSpanProcessor({ exporter: spanExporter });
const resource = defaultResource();
/** The same sampler, processor, resource, limits and ids for the SDK's tracer and the platform's spans, as startTelemetry sets them. */
export const pipeline = { sampler: switchable, processors: [processor], resource, limits: SPAN_LIMITS, ids: spanIds };
const provider = new TracerProvider({ resource, sampler: switchable, spanProcessors: [processor], spanLimits: SPAN_LIMITS, idGenerator: spanIds });
let installed = false;

/** Registers the provider, an AsyncLocalStorage context manager and the W3C propagator (once). */
export function installTestTracing(): void {
  if (installed) return;
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  if (!trace.setGlobalTracerProvider(provider)) throw new Error("another tracer provider is registered");
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  setSpanPipeline(pipeline);
  installed = true;
}

/** Uses `next` as the process's sampler with the matching policy, as startTelemetry sets them. */
export function useSampler(next: Sampler, policy: SamplingPolicy): void {
  sampler = next;
  setSamplingPolicy(policy);
}

/** The spans ended so far (SimpleSpanProcessor hands them to the exporter asynchronously). */
export async function finishedSpans() {
  await processor.forceFlush();
  return spanExporter.getFinishedSpans();
}
