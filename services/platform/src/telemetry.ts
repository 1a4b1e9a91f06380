import type { IncomingMessage, ServerResponse } from "node:http";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { metrics } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { OTLPTraceExporter as OTLPJsonTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { NodeSDK } from "@opentelemetry/sdk-node";
import { BatchSpanProcessor, ConsoleSpanExporter, NoopSpanProcessor, SimpleSpanProcessor, type SpanProcessor } from "@opentelemetry/sdk-trace";

let sdk: NodeSDK | undefined;
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
export function startTelemetry(options: TelemetryOptions): void {
  if (sdk) return;
  const env = options.env ?? process.env;
  prometheus = new PrometheusExporter({ preventServerStart: true });
  sdk = new NodeSDK({
    serviceName: options.serviceName,
    resource: resourceFromAttributes({
      "service.name": options.serviceName,
      "service.version": options.serviceVersion,
      "deployment.environment": options.environment,
      "deployment.environment.name": options.environment,
    }),
    spanProcessors: spanProcessors(env),
    metricReaders: [prometheus],
    instrumentations: [],
  });
  sdk.start();
  registerRuntimeMetrics();
}

export async function shutdownTelemetry(): Promise<void> {
  await sdk?.shutdown().catch(() => undefined);
  sdk = undefined;
}

/** Serves /metrics on the admin port; 503 when telemetry was not started in this process. */
export function metricsHandler(req: IncomingMessage, res: ServerResponse): void {
  if (!prometheus) {
    res.writeHead(503).end("telemetry not started\n");
    return;
  }
  prometheus.getMetricsRequestHandler(req, res);
}

function spanProcessors(env: NodeJS.ProcessEnv): SpanProcessor[] {
  const processors: SpanProcessor[] = [];
  if (env["OTEL_EXPORTER_OTLP_ENDPOINT"] || env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]) {
    // http/protobuf by default, as the spec says; http/json when asked (the tests read it as JSON).
    const protocol = env["OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"] ?? env["OTEL_EXPORTER_OTLP_PROTOCOL"];
    processors.push(
      new BatchSpanProcessor({
        exporter: protocol === "http/json" ? new OTLPJsonTraceExporter() : new OTLPTraceExporter(),
        scheduledDelayMillis: Number(env["OTEL_BSP_SCHEDULE_DELAY"] ?? 1_000),
      }),
    );
  }
  if (env["MESHWORK_TRACES"] === "console") processors.push(new SimpleSpanProcessor({ exporter: new ConsoleSpanExporter() }));
  // Without an exporter the SDK would register no tracer provider at all, and trace context would
  // stop propagating: events and logs must carry trace ids even when nobody collects spans.
  if (processors.length === 0) processors.push(new NoopSpanProcessor());
  return processors;
}

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
