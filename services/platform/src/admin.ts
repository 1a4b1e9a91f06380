import http from "node:http";
import type net from "node:net";
import { metricsHandler } from "./telemetry.ts";

export type AdminRoute = (req: http.IncomingMessage, res: http.ServerResponse) => void | Promise<void>;

export interface ReadinessCheck {
  name: string;
  check(): Promise<boolean> | boolean;
}

/**
 * The admin port: /healthz (the process is alive), /readyz (every dependency answers),
 * /metrics (Prometheus), plus a service's own routes (identity's JWKS). Kept off the RPC port so
 * that the mesh can expose one without the other.
 */
export async function startAdminServer(options: {
  host: string;
  port: number;
  checks: ReadinessCheck[];
  routes?: Record<string, AdminRoute>;
  isShuttingDown: () => boolean;
}): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://admin");
    try {
      if (url.pathname === "/healthz") {
        res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
      } else if (url.pathname === "/readyz") {
        const results = await Promise.all(
          options.checks.map(async ({ name, check }) => [name, await Promise.resolve(check()).catch(() => false)] as const),
        );
        const ready = !options.isShuttingDown() && results.every(([, ok]) => ok);
        res
          .writeHead(ready ? 200 : 503, { "content-type": "application/json" })
          .end(JSON.stringify({ ready, checks: Object.fromEntries(results), shuttingDown: options.isShuttingDown() }) + "\n");
      } else if (url.pathname === "/metrics") {
        metricsHandler(req, res);
      } else if (options.routes?.[url.pathname]) {
        await options.routes[url.pathname]!(req, res);
      } else {
        res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
      }
    } catch {
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error\n");
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
