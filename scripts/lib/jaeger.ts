import fs from "node:fs";
import path from "node:path";
import { ROOT, spawnManaged, waitFor, type ManagedProcess } from "./system.ts";

/**
 * Jaeger v2 (one binary: OTLP receiver, in-memory storage, query API and UI) for `make dev` with
 * MESHWORK_TRACES=jaeger and for the trace test. The services export to it with the standard
 * OTEL_EXPORTER_OTLP_ENDPOINT, exactly as they would to a collector.
 */
export interface JaegerPorts {
  /** Query API and UI (16686 by default). */
  query: number;
  queryGrpc: number;
  /** OTLP/HTTP receiver (4318 by default). */
  otlpHttp: number;
  health: number;
}

export const DEFAULT_JAEGER_PORTS: JaegerPorts = { query: 16686, queryGrpc: 16685, otlpHttp: 4318, health: 13133 };

export function jaegerBinary(): string {
  const binary = path.join(ROOT, ".tools/bin/jaeger");
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run scripts/install-tools.sh jaeger`);
  return binary;
}

export interface JaegerOptions {
  onLine?: (line: string) => void;
  /**
   * A built Jaeger UI to serve on the query port: jaeger-ui's build output (index.html, static/),
   * e.g. the assets.tar.gz of a jaeger-ui release. Without it Jaeger serves the page compiled into
   * the binary, and the Go module (all that can be fetched here) carries only a placeholder page:
   * the UI's built assets live in jaeger-ui's releases, which no package registry publishes.
   */
  uiAssets?: string;
}

export async function startJaeger(ports: JaegerPorts, options: JaegerOptions = {}): Promise<ManagedProcess> {
  const uiAssets = options.uiAssets ? path.resolve(options.uiAssets) : "";
  // Jaeger would panic on a directory without the UI's index.html: say what is wrong instead.
  if (uiAssets && !fs.existsSync(path.join(uiAssets, "index.html"))) {
    throw new Error(`${uiAssets} is not a built Jaeger UI: it has no index.html (expected jaeger-ui's build output: index.html and static/)`);
  }
  const jaeger = spawnManaged("jaeger", jaegerBinary(), ["--config", path.join(ROOT, "scripts/lib/jaeger-local.yaml")], {
    onLine: options.onLine,
    env: {
      JAEGER_QUERY_PORT: String(ports.query),
      JAEGER_QUERY_GRPC_PORT: String(ports.queryGrpc),
      JAEGER_OTLP_HTTP_PORT: String(ports.otlpHttp),
      JAEGER_HEALTH_PORT: String(ports.health),
      JAEGER_UI_ASSETS: uiAssets,
    },
  });
  await Promise.race([
    waitFor(async () => (await fetch(`http://127.0.0.1:${ports.query}/api/services`).catch(() => undefined))?.ok === true, `jaeger on port ${ports.query}`, 30_000, 100),
    jaeger.exited.then((code) => {
      throw new Error(`jaeger exited with ${code}:\n${jaeger.output()}`);
    }),
  ]);
  return jaeger;
}

/** What a service needs to send its spans to this Jaeger. */
export function jaegerExportEnv(ports: JaegerPorts): NodeJS.ProcessEnv {
  return { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${ports.otlpHttp}`, OTEL_BSP_SCHEDULE_DELAY: "200" };
}
