import type { IncomingMessage, ServerResponse } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { context, metrics, propagation, trace, type Sampler } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from "@opentelemetry/core";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { detectResources, envDetector, processDetector, resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ConsoleSpanExporter,
  NoopSpanProcessor,
  ParentBasedSampler,
  SimpleSpanProcessor,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type ReadableSpan,
  type SpanExporter,
  type SpanProcessor,
} from "@opentelemetry/sdk-trace";
import { hostDetector } from "./host-detector.ts";
import { setSpanPipeline, SPAN_LIMITS } from "./recorded-span.ts";
import { setSamplingPolicy, spanIds } from "./tracing-policy.ts";

let providers: { tracer: TracerProvider; meter: MeterProvider } | undefined;
let prometheus: PrometheusExporter | undefined;

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion: string;
  environment: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts the OpenTelemetry SDK once per process, before the service's modules load (see
 * telemetry-register.ts). Traces go to OTLP when OTEL_EXPORTER_OTLP_ENDPOINT is set, to the
 * console when MESHWORK_TRACES=console; metrics are always served in Prometheus format on the
 * admin port. The standard OTEL_* variables (sampler, resource attributes, endpoints) apply.
 */
export async function startTelemetry(options: TelemetryOptions): Promise<void> {
  if (providers) return;
  const env = options.env ?? process.env;
  // The SDK's parts are assembled here rather than through NodeSDK, which loads every exporter
  // it could ever use (gRPC, Zipkin, logs) and cost each service tens of MB (bench/footprint.ts).
  const resource = resourceFromAttributes({
    "service.name": options.serviceName,
    "service.version": options.serviceVersion,
    "deployment.environment": options.environment,
    "deployment.environment.name": options.environment,
  }).merge(detectResources({ detectors: [envDetector, hostDetector, processDetector] }));
  prometheus = new PrometheusExporter({ preventServerStart: true });
  const processors = await spanProcessors(env);
  // With no exporter, spans would be built only to be dropped: sample nothing unless asked.
  // Trace and span ids are still created and propagated, so events and logs keep their trace ids.
  const collecting = !(processors.length === 1 && processors[0] instanceof NoopSpanProcessor);
  const sampler = collecting || env["OTEL_TRACES_SAMPLER"] ? samplerFromEnv(env) : new AlwaysOffSampler();
  setSamplingPolicy(sampler instanceof AlwaysOffSampler ? "never" : sampler instanceof ParentBasedSampler ? "follow-parent" : "independent");
  const tracer = new TracerProvider({ resource, sampler, spanProcessors: processors, spanLimits: SPAN_LIMITS, idGenerator: spanIds });
  // The platform's own hot-path spans (recorded-span.ts) go to the same sampler and processors.
  setSpanPipeline({ sampler, processors, resource, limits: SPAN_LIMITS, ids: spanIds });
  const meter = new MeterProvider({ resource, readers: [prometheus] });
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
  trace.setGlobalTracerProvider(tracer);
  metrics.setGlobalMeterProvider(meter);
  providers = { tracer, meter };
  registerRuntimeMetrics();
}

export async function shutdownTelemetry(): Promise<void> {
  await Promise.all([providers?.tracer.shutdown(), providers?.meter.shutdown()].map((done) => done?.catch(() => undefined)));
  providers = undefined;
  setSamplingPolicy("independent");
  setSpanPipeline(undefined);
}

/** OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG as the specification defines them. */
function samplerFromEnv(env: NodeJS.ProcessEnv): Sampler {
  const ratio = Number(env["OTEL_TRACES_SAMPLER_ARG"] ?? 1);
  const root = Number.isFinite(ratio) ? new TraceIdRatioBasedSampler(ratio) : new AlwaysOnSampler();
  switch (env["OTEL_TRACES_SAMPLER"]) {
    case "always_on":
      return new AlwaysOnSampler();
    case "always_off":
      return new AlwaysOffSampler();
    case "traceidratio":
      return root;
    case "parentbased_always_off":
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case "parentbased_traceidratio":
      return new ParentBasedSampler({ root });
    default:
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** Serves /metrics on the admin port; 503 when telemetry was not started in this process. */
export function metricsHandler(req: IncomingMessage, res: ServerResponse): void {
  if (!prometheus) {
    res.writeHead(503).end("telemetry not started\n");
    return;
  }
  prometheus.getMetricsRequestHandler(req, res);
}

async function spanProcessors(env: NodeJS.ProcessEnv): Promise<SpanProcessor[]> {
  const processors: SpanProcessor[] = [];
  if (env["OTEL_EXPORTER_OTLP_ENDPOINT"] || env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) {
    // http/protobuf by default, as the spec says; http/json when asked (the tests read it as JSON).
    const protocol = env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] ?? env["OTEL_EXPORTER_OTLP_PROTOCOL"];
    // Loaded only when configured: an exporter's module graph costs ~20 MB of resident memory.
    const exporter = protocol === "http/json" ? new (await import("@opentelemetry/exporter-trace-otlp-http")).OTLPTraceExporter() : await protobufTraceExporter();
    processors.push(new BatchSpanProcessor({ exporter, scheduledDelayMillis: Number(env["OTEL_BSP_SCHEDULE_DELAY"] ?? 1_000) }));
  }
  if (env["MESHWORK_TRACES"] === "console") processors.push(new SimpleSpanProcessor({ exporter: new ConsoleSpanExporter() }));
  // Without an exporter the SDK would register no tracer provider at all, and trace context would
  // stop propagating: events and logs must carry trace ids even when nobody collects spans.
  if (processors.length === 0) processors.push(new NoopSpanProcessor());
  return processors;
}

/**
 * The SDK's OTLP/HTTP protobuf trace exporter (exporter-trace-otlp-proto assembles the same
 * parts: endpoint, headers, timeout, compression and retries from the OTEL_EXPORTER_OTLP_*
 * variables), with the request encoded by otlp-protobuf.ts: the same bytes, a fraction of the
 * CPU per span (docs/performance.md, "Fifth round: tracing").
 */
async function protobufTraceExporter(): Promise<SpanExporter> {
  const [{ OTLPExporterBase }, { convertLegacyHttpOptions, createOtlpHttpExportDelegate }, { ProtobufTraceSerializer, TraceExporterMetricsHelper }, { serializeTraceExportRequest }] =
    await Promise.all([
      import("@opentelemetry/otlp-exporter-base"),
      import("@opentelemetry/otlp-exporter-base/node-http"),
      import("@opentelemetry/otlp-transformer"),
      import("./otlp-protobuf.ts"),
    ]);
  const serializer = { serializeRequest: serializeTraceExportRequest, deserializeResponse: ProtobufTraceSerializer.deserializeResponse };
  const options = convertLegacyHttpOptions({}, "TRACES", "v1/traces", { "Content-Type": "application/x-protobuf" });
  return new OTLPExporterBase<ReadableSpan[]>(createOtlpHttpExportDelegate(options, serializer, OTLP_HTTP_SPAN_EXPORTER, TraceExporterMetricsHelper, undefined));
}

/** The self-observability component type exporter-trace-otlp-proto gives its exporter. */
const OTLP_HTTP_SPAN_EXPORTER = "otlp_http_span_exporter";

/** Memory and event-loop delay: the two numbers that explain most latency surprises in Node. */
function registerRuntimeMetrics(): void {
  const meter = metrics.getMeter("@meshwork/platform/runtime");
  const loopDelay = monitorEventLoopDelay({ resolution: 20 });
  loopDelay.enable();
  meter
    .createObservableGauge("process.memory.rss", { description: "Resident set size of the process", unit: "By" })
    .addCallback((result) => result.observe(process.memoryUsage.rss()));
  meter
    .createObservableGauge("nodejs.heap.used", { description: "V8 heap in use", unit: "By" })
    .addCallback((result) => result.observe(process.memoryUsage().heapUsed));
  meter
    .createObservableGauge("nodejs.eventloop.delay.p99", { description: "99th percentile event-loop delay since the last scrape", unit: "ms" })
    .addCallback((result) => {
      result.observe(loopDelay.percentile(99) / 1e6);
      loopDelay.reset();
    });
}
