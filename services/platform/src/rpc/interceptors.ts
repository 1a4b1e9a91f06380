import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { context, propagation, SpanKind, SpanStatusCode, trace, type TextMapGetter } from "@opentelemetry/api";
import { DomainError, toConnectError } from "../errors.ts";
import type { Logger } from "../logger.ts";
import { rpcServerDuration } from "../metrics.ts";

const tracer = trace.getTracer("@meshwork/platform/rpc");

const headerGetter: TextMapGetter<Headers> = {
  keys: (carrier) => [...carrier.keys()],
  get: (carrier, key) => carrier.get(key) ?? undefined,
};

/**
 * A SERVER span and a duration sample for every call, whatever the protocol. The Connect adapter
 * on HTTP/2 is invisible to the auto-instrumentations, so this is where RPC telemetry lives.
 */
export function serverTelemetryInterceptor(): Interceptor {
  return (next) => async (req) => {
    const parent = propagation.extract(context.active(), req.header, headerGetter);
    const protocol = protocolOf(req.header.get("content-type"));
    const service = req.service.typeName;
    const method = req.method.name;
    const started = performance.now();
    return tracer.startActiveSpan(
      `${service}/${method}`,
      {
        kind: SpanKind.SERVER,
        attributes: {
          "rpc.system": protocol === "connect" ? "connect_rpc" : "grpc",
          "rpc.service": service,
          "rpc.method": method,
          "meshwork.rpc.protocol": protocol,
        },
      },
      parent,
      async (span) => {
        let code = "ok";
        try {
          return await next(req);
        } catch (error) {
          // Already mapped by the innermost interceptor; `from` only narrows the type.
          const connectError = ConnectError.from(error);
          code = Code[connectError.code] ?? "unknown";
          span.setStatus({ code: SpanStatusCode.ERROR, message: connectError.rawMessage });
          throw connectError;
        } finally {
          span.setAttribute(protocol === "connect" ? "rpc.connect_rpc.error_code" : "rpc.grpc.status_code", code === "ok" ? 0 : code);
          span.setAttribute("rpc.response.status_code", code);
          rpcServerDuration.record(performance.now() - started, { "rpc.service": service, "rpc.method": method, "rpc.protocol": protocol, code });
          span.end();
        }
      },
    );
  };
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
