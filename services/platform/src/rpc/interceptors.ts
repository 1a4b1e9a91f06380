import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { context, propagation, SpanKind, SpanStatusCode, trace, type Attributes, type TextMapGetter } from "@opentelemetry/api";
import { DomainError, toConnectError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { rpcServerDuration } from "../metrics.ts";
import { platformTracer } from "../recorded-span.ts";
import { spanMayRecord, unrecordedSpan } from "../tracing-policy.ts";

const tracer = platformTracer("@meshwork/platform/rpc");

const headerGetter: TextMapGetter<Headers> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key) ?? undefined,
};

/**
 * A SERVER span and a duration sample for every call, whatever the protocol. The Connect adapter
 * on HTTP/2 is invisible to the auto-instrumentations, so this is where RPC telemetry lives.
 *
 * When the process's sampler cannot record this span (tracing-policy.ts: no exporter, or
 * `always_off`, or a parent-based sampler under an unsampled parent), the span is the non-recording
 * one the SDK would return, with fresh ids under the caller's trace, built without the SDK's
 * sampling, attribute and bookkeeping work: its ids still reach logs, events and outgoing calls.
 * Otherwise the span is the platform's recorded span (recorded-span.ts: the configured sampler and
 * processors, without the SDK tracer's per-span copies). The span's name and attributes, its end
 * attributes and the duration's attribute sets are made once per method, protocol and code (frozen:
 * a span starts with its set uncopied, and the metrics SDK hashes each set once:
 * scripts/patch-dependencies.ts).
 */
export function serverTelemetryInterceptor(): Interceptor {
  return (next) => async (req) => {
    const parent = propagation.extract(context.active(), req.header, headerGetter);
    const protocol = protocolOf(req.header.get("content-type"));
    const shape = shapeOf(req.service, req.method);
    const started = performance.now();
    const parentSpan = trace.getSpan(parent);
    const span = spanMayRecord(parentSpan) ? tracer.startSpan(shape.spanName, SpanKind.SERVER, shape.spanAttributes[protocol], parent) : unrecordedSpan(parentSpan);
    const recording = span.isRecording();
    let code = "ok";
    try {
      return await context.with(trace.setSpan(parent, span), next, undefined, req);
    } catch (error) {
      // Already mapped by the innermost interceptor; `from` only narrows the type.
      const connectError = ConnectError.from(error);
      code = Code[connectError.code] ?? "unknown";
      if (recording) span.setStatus({ code: SpanStatusCode.ERROR, message: connectError.rawMessage });
      throw connectError;
    } finally {
      rpcServerDuration.record(performance.now() - started, shape.duration(protocol, code));
      if (recording) {
        span.setAttributes(shape.endAttributes(protocol, code));
        span.end();
      }
    }
  };
}

type Protocol = ReturnType<typeof protocolOf>;

/** What a method's span and duration samples carry, made once. */
interface MethodShape {
  spanName: string;
  spanAttributes: Record<Protocol, Attributes>;
  duration(protocol: Protocol, code: string): Attributes;
  /** The attributes a span gets when its call ends with `code`. */
  endAttributes(protocol: Protocol, code: string): Attributes;
}

const shapes = new WeakMap<DescMethod, MethodShape>();

function shapeOf(service: DescService, method: DescMethod): MethodShape {
  let shape = shapes.get(method);
  if (shape && method.parent === service) return shape;
  const spanAttributes = (protocol: Protocol): Attributes =>
    Object.freeze({ "rpc.system": protocol === "connect" ? "connect_rpc" : "grpc", "rpc.service": service.typeName, "rpc.method": method.name, "meshwork.rpc.protocol": protocol });
  // Codes are Connect's seventeen plus "ok" and "unknown": a bounded set per method and protocol.
  const durations = new Map<string, Attributes>();
  const ends = new Map<string, Attributes>();
  shape = {
    spanName: `${service.typeName}/${method.name}`,
    spanAttributes: { grpc: spanAttributes("grpc"), grpc_web: spanAttributes("grpc_web"), connect: spanAttributes("connect") },
    duration(protocol, code) {
      const key = `${protocol} ${code}`;
      let attributes = durations.get(key);
      if (!attributes) {
        attributes = Object.freeze({ "rpc.service": service.typeName, "rpc.method": method.name, "rpc.protocol": protocol, code });
        durations.set(key, attributes);
      }
      return attributes;
    },
    endAttributes(protocol, code) {
      const key = `${protocol} ${code}`;
      let attributes = ends.get(key);
      if (!attributes) {
        attributes = Object.freeze({ [protocol === "connect" ? "rpc.connect_rpc.error_code" : "rpc.grpc.status_code"]: code === "ok" ? 0 : code, "rpc.response.status_code": code });
        ends.set(key, attributes);
      }
      return attributes;
    },
  };
  if (method.parent === service) shapes.set(method, shape);
  return shape;
}

/**
 * Maps typed domain errors to Connect codes; anything unexpected is logged and becomes Internal.
 * It is the innermost interceptor, so every interceptor around it sees the mapped ConnectError
 * (the deprecation interceptor marks it, telemetry records its code).
 */
export function errorInterceptor(log: Logger): Interceptor {
  return (next) => async (req) => {
    try {
      return await next(req);
    } catch (error) {
      if (!(error instanceof ConnectError) && !(error instanceof DomainError)) {
        log.error({ err: error, method: `${req.service.typeName}/${req.method.name}` }, "unhandled error in RPC handler");
      }
      throw toConnectError(error);
    }
  };
}

export function protocolOf(contentType: string | null): "grpc" | "grpc_web" | "connect" {
  if (contentType?.startsWith("application/grpc-web")) return "grpc_web";
  if (contentType?.startsWith("application/grpc")) return "grpc";
  return "connect";
}
