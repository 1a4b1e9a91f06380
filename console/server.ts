/**
 * The console's server: the built single-page app from `dist/`, and, when upstreams are given,
 * a same-origin proxy to the services, so a browser needs no CORS. Connect calls keep the path
 * they have everywhere (`/meshwork.<domain>.v<N>.<Service>/<Method>`), which is also how the
 * gateway routes them in a cluster, where this server serves only the files.
 *
 *   CONSOLE_PORT (8080), CONSOLE_HOST (127.0.0.1)
 *   <DOMAIN>_URL          RPC upstream per domain (IDENTITY_URL=http://127.0.0.1:50051, ...)
 *   <DOMAIN>_ADMIN_URL    admin port per domain, read for the deprecated-API panel (optional)
 *   TRACE_UI_URL          link to one trace, with {traceId} (e.g. http://127.0.0.1:16686/trace/{traceId})
 *   TRACE_QUERY_URL       Jaeger's query API base (http://127.0.0.1:16686), for the span tree (optional)
 */
import fs from "node:fs";
import http from "node:http";
import type net from "node:net";
import path from "node:path";
import { pipeline } from "node:stream/promises";

export interface ConsoleServerOptions {
  host: string;
  port: number;
  /** The built app (vite build). */
  distDir: string;
  /** RPC base URL per domain (identity, presence, ...). Empty in a cluster: the gateway routes. */
  upstreams: Record<string, string>;
  /** Admin base URL per domain, for the deprecated-API calls in /metrics. */
  adminUpstreams: Record<string, string>;
  traceUiUrl?: string;
  traceQueryUrl?: string;
}

/** What the app reads at start: where traces are, and which optional panels have data. */
export interface ConsoleConfig {
  traceUiUrl: string;
  traceTree: boolean;
  deprecatedCalls: boolean;
}

const RPC_PATH = /^\/meshwork\.([a-z]+)\.v\d+\.[A-Za-z]+\/[A-Za-z]+$/;
const TRACE_PATH = /^\/api\/traces\/([0-9a-f]{32})$/;
const DEPRECATED_METRIC = "meshwork_rpc_deprecated_calls";
const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".json": "application/json",
  ".png": "image/png",
  ".ico": "image/x-icon",
};
// The app talks only to its own origin; nothing is framed, inlined or sent elsewhere.
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

export async function startConsoleServer(options: ConsoleServerOptions): Promise<{ port: number; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    handle(options, req, res).catch(() => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" });
      res.end("upstream failed\n");
    });
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

async function handle(options: ConsoleServerOptions, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const url = new URL(req.url ?? "/", "http://console");
  const rpc = RPC_PATH.exec(url.pathname);
  if (rpc) {
    const upstream = options.upstreams[rpc[1]!];
    if (!upstream) return void res.writeHead(404, { "content-type": "text/plain" }).end(`no upstream for ${rpc[1]}\n`);
    return proxy(req, res, new URL(url.pathname + url.search, upstream));
  }
  if (url.pathname === "/config.json") {
    const config: ConsoleConfig = {
      traceUiUrl: options.traceUiUrl ?? "",
      traceTree: Boolean(options.traceQueryUrl),
      deprecatedCalls: Object.keys(options.adminUpstreams).length > 0,
    };
    return void res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(config));
  }
  const trace = TRACE_PATH.exec(url.pathname);
  if (trace && options.traceQueryUrl) return proxy(req, res, new URL(`/api/traces/${trace[1]}`, options.traceQueryUrl));
  if (url.pathname === "/api/deprecated-calls") return deprecatedCalls(options.adminUpstreams, res);
  return serveFile(options.distDir, url.pathname, res);
}

/** Streams both ways, so server-streaming RPCs (WatchOnlineCount) pass through as they arrive. */
function proxy(req: http.IncomingMessage, res: http.ServerResponse, target: URL): Promise<void> {
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, host: target.host, "x-forwarded-for": req.socket.remoteAddress ?? "" };
    const upstream = http.request(target, { method: req.method, headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      pipeline(answer, res).then(resolve, resolve);
    });
    upstream.once("error", reject);
    // A browser that goes away (tab closed, stream aborted) ends the upstream call too.
    res.once("close", () => upstream.destroy());
    pipeline(req, upstream).catch(() => undefined);
  });
}

/**
 * The deprecated-API counter from every service's /metrics, as JSON rows. It is counted per
 * service and method, and per calling principal where the platform labels it so.
 */
async function deprecatedCalls(adminUpstreams: Record<string, string>, res: http.ServerResponse): Promise<void> {
  const rows: { service: string; labels: Record<string, string>; value: number }[] = [];
  await Promise.all(
    Object.entries(adminUpstreams).map(async ([service, base]) => {
      const text = await fetch(new URL("/metrics", base)).then((answer) => (answer.ok ? answer.text() : ""), () => "");
      for (const line of text.split("\n")) {
        if (!line.startsWith(DEPRECATED_METRIC)) continue;
        const match = /^[a-z_]+(?:\{(.*)\})? ([0-9.e+-]+)/.exec(line);
        if (!match) continue;
        const labels = Object.fromEntries([...(match[1] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((label) => [label[1]!, label[2]!]));
        rows.push({ service, labels, value: Number(match[2]) });
      }
    }),
  );
  res.writeHead(200, { "content-type": "application/json", "cache-control": "no-store" }).end(JSON.stringify(rows));
}

function serveFile(distDir: string, pathname: string, res: http.ServerResponse): void {
  const root = path.resolve(distDir);
  let file = path.resolve(root, "." + decodeURIComponent(pathname));
  if (!file.startsWith(root + path.sep) && file !== root) return void res.writeHead(400, { "content-type": "text/plain" }).end("bad path\n");
  // The app has one page: every path that is not a file is that page.
  if (!fs.existsSync(file) || fs.statSync(file).isDirectory()) file = path.join(root, "index.html");
  if (!fs.existsSync(file)) return void res.writeHead(503, { "content-type": "text/plain" }).end("the console is not built: run npm run build -w console\n");
  const hashed = file.includes(`${path.sep}assets${path.sep}`);
  res.writeHead(200, {
    "content-type": CONTENT_TYPES[path.extname(file)] ?? "application/octet-stream",
    "cache-control": hashed ? "public, max-age=31536000, immutable" : "no-cache",
    ...SECURITY_HEADERS,
  });
  fs.createReadStream(file).pipe(res);
}

/** Upstreams from the environment: every <DOMAIN>_URL and <DOMAIN>_ADMIN_URL. */
export function upstreamsFromEnv(env: NodeJS.ProcessEnv): Pick<ConsoleServerOptions, "upstreams" | "adminUpstreams"> {
  const upstreams: Record<string, string> = {};
  const adminUpstreams: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (!value) continue;
    const admin = /^([A-Z]+)_ADMIN_URL$/.exec(key);
    const rpc = /^([A-Z]+)_URL$/.exec(key);
    if (admin) adminUpstreams[admin[1]!.toLowerCase()] = value;
    else if (rpc && !["NATS", "DATABASE", "TRACE"].includes(rpc[1]!)) upstreams[rpc[1]!.toLowerCase()] = value;
  }
  return { upstreams, adminUpstreams };
}

if (import.meta.main) {
  const server = await startConsoleServer({
    host: process.env["CONSOLE_HOST"] ?? "127.0.0.1",
    port: Number(process.env["CONSOLE_PORT"] ?? 8080),
    distDir: process.env["CONSOLE_DIST"] ?? path.join(import.meta.dirname, "dist"),
    ...upstreamsFromEnv(process.env),
    traceUiUrl: process.env["TRACE_UI_URL"],
    traceQueryUrl: process.env["TRACE_QUERY_URL"],
  });
  console.log(`console on http://${process.env["CONSOLE_HOST"] ?? "127.0.0.1"}:${server.port}`);
  for (const signal of ["SIGTERM", "SIGINT"] as const) process.once(signal, () => void server.close().then(() => process.exit(0)));
}
