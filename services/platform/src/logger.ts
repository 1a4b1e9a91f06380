import { trace } from "@opentelemetry/api";
import { pino, type Logger } from "pino";

export type { Logger } from "pino";

export interface LoggerOptions {
  service: string;
  level: string;
  format: "pretty" | "json";
}

/**
 * One logger per process. Every line written inside a span carries its trace and span ids, so a
 * log line leads to its trace. Secrets are redacted by key wherever they appear.
 */
export function createLogger(options: LoggerOptions): Logger {
  return pino({
    name: options.service,
    level: options.level,
    base: { service: options.service },
    redact: {
      paths: ["password", "*.password", "token", "*.token", "accessToken", "*.accessToken", "authorization", "*.authorization"],
      censor: "[redacted]",
    },
    mixin() {
      const spanContext = trace.getActiveSpan()?.spanContext();
      return spanContext ? { trace_id: spanContext.traceId, span_id: spanContext.spanId } : {};
    },
    transport:
      options.format === "pretty"
        ? {
            target: "pino-pretty",
            options: {
              colorize: process.stdout.isTTY,
              translateTime: "HH:MM:ss.l",
              ignore: "pid,hostname,service,name",
              messageFormat: `[${options.service}] {msg}`,
              singleLine: true,
            },
          }
        : undefined,
  });
}
