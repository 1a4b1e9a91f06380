/**
 * `make dev`: nats-server with JetStream, then every service in the manifest (services/<name>/
 * package.json) as a separate process, each ready before the table of endpoints is printed.
 * The web console on 8080; with
 * MESHWORK_TRACES=jaeger, Jaeger first, and every service exports its spans to it
 * (MESHWORK_JAEGER_UI=<dir>: a built Jaeger UI for Jaeger to serve). Ctrl-C stops everything in order.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { startConsoleServer, upstreamsFromEnv } from "../console/server.ts";
import { DEFAULT_JAEGER_PORTS, jaegerExportEnv, startJaeger, type JaegerPorts } from "./lib/jaeger.ts";
import { startWaves } from "./lib/services.ts";
import { DEFAULT_PORTS, MANIFEST, peerEnv, ROOT, serviceClientEnv, SERVICES, startNats, startService, type ManagedProcess } from "./lib/system.ts";

const started = performance.now();
const dataDir = path.resolve(ROOT, process.env["MESHWORK_DEV_DATA_DIR"] ?? ".data");
// Shifts every port, so a second copy (the test of `make dev` itself) can run beside the first.
const offset = Number(process.env["MESHWORK_DEV_PORT_OFFSET"] ?? 0);
const natsPort = Number(process.env["NATS_PORT"] ?? 4222) + offset;
const ports: typeof DEFAULT_PORTS = Object.fromEntries(SERVICES.map((name) => [name, { rpc: DEFAULT_PORTS[name]!.rpc + offset, admin: DEFAULT_PORTS[name]!.admin + offset }]));
const consolePort = Number(process.env["CONSOLE_PORT"] ?? 8080) + offset;
const jaegerPorts = process.env["MESHWORK_TRACES"] === "jaeger" ? (Object.fromEntries(Object.entries(DEFAULT_JAEGER_PORTS).map(([key, port]) => [key, port + offset])) as unknown as JaegerPorts) : undefined;
const jaegerUi = process.env["MESHWORK_JAEGER_UI"] || undefined;
const admin = adminCredentials();
// identity keeps no state about service clients, so fresh secrets on every start are enough.
const clientEnv = serviceClientEnv();
const processes: ManagedProcess[] = [];
let consoleServer: Awaited<ReturnType<typeof startConsoleServer>> | undefined;
let stopping = false;
const print = (line: string) => process.stdout.write(line + "\n");

process.on("SIGINT", () => void shutdown());
process.on("SIGTERM", () => void shutdown());

try {
  processes.push(
    await startNats({
      port: natsPort,
      dataDir: path.join(dataDir, "nats"),
      onLine: (line) => /\[(ERR|WRN)\]/.test(line) && print(`[nats] ${line}`),
    }),
  );
  if (jaegerPorts) {
    processes.push(await startJaeger(jaegerPorts, { onLine: (line) => /error/i.test(line) && print(`[jaeger] ${line}`), uiAssets: jaegerUi }));
  }
  const jwksUrl = `http://127.0.0.1:${ports["identity"]!.admin}/.well-known/jwks.json`;
  const start = (name: string) =>
    startService({
      name,
      rpcPort: ports[name]!.rpc,
      adminPort: ports[name]!.admin,
      natsPort,
      dataDir,
      jwksUrl,
      onLine: print,
      // A busy machine (CI running other suites) may need longer than the default 20 s.
      readyTimeoutMs: process.env["MESHWORK_DEV_READY_TIMEOUT_MS"] ? Number(process.env["MESHWORK_DEV_READY_TIMEOUT_MS"]) : undefined,
      env: {
        MESHWORK_ADMIN_EMAIL: admin.email,
        MESHWORK_ADMIN_PASSWORD: admin.password,
        RPC_HOST: process.env["RPC_HOST"] ?? "127.0.0.1",
        // Any web app served from this machine may call, whatever port its dev server picked.
        CORS_ALLOWED_ORIGINS: process.env["CORS_ALLOWED_ORIGINS"] ?? "http://localhost:*,http://127.0.0.1:*",
        ...peerEnv(Object.fromEntries(SERVICES.map((name) => [name, ports[name]!.rpc]))),
        ...clientEnv[name],
        ...(jaegerPorts ? jaegerExportEnv(jaegerPorts) : {}),
      },
    });
  // Wave by wave (producers before the consumers of their streams), each wave together.
  // Every process that started is kept, even when another fails, so shutdown stops it too.
  const startAll = async (names: string[]) => {
    const results = await Promise.allSettled(names.map(start));
    for (const result of results) if (result.status === "fulfilled") processes.push(result.value);
    const failure = results.find((result) => result.status === "rejected");
    if (failure) throw failure.reason;
  };
  for (const wave of startWaves(MANIFEST)) await startAll(wave.map((service) => service.name));
  consoleServer = await startConsoleServer({
    host: process.env["CONSOLE_HOST"] ?? "127.0.0.1",
    port: consolePort,
    distDir: path.join(ROOT, "console/dist"),
    ...upstreamsFromEnv(
      Object.fromEntries(SERVICES.flatMap((name) => [[`${name.toUpperCase()}_URL`, `http://127.0.0.1:${ports[name]!.rpc}`], [`${name.toUpperCase()}_ADMIN_URL`, `http://127.0.0.1:${ports[name]!.admin}`]])),
    ),
    traceUiUrl: jaegerPorts ? `http://127.0.0.1:${jaegerPorts.query}/trace/{traceId}` : undefined,
    traceQueryUrl: jaegerPorts ? `http://127.0.0.1:${jaegerPorts.query}` : undefined,
  });
} catch (error) {
  print(`\nmake dev failed: ${(error as Error).message}`);
  await shutdown(1);
}

print(`
Meshwork is up in ${((performance.now() - started) / 1000).toFixed(1)} s.

  service    rpc (gRPC, gRPC-Web, Connect)   admin (/healthz /readyz /metrics)
${SERVICES.map((name) => `  ${name.padEnd(10)} http://127.0.0.1:${ports[name]!.rpc}          http://127.0.0.1:${ports[name]!.admin}`).join("\n")}
  nats       nats://127.0.0.1:${natsPort} (JetStream, data in ${path.relative(ROOT, dataDir) || "."}/nats)
  console    http://127.0.0.1:${consolePort}   (web console: sign in, live count, events, orders, dead letters)
  traces     ${jaegerPorts ? `http://127.0.0.1:${jaegerPorts.query}   (Jaeger: query API and ${jaegerUi ? `the UI from ${jaegerUi}` : "a placeholder page (MESHWORK_JAEGER_UI=<jaeger-ui build> for the UI)"}; OTLP/HTTP in on ${jaegerPorts.otlpHttp})` : "MESHWORK_TRACES=jaeger make dev sends them to Jaeger"}

  admin      ${admin.email} / ${admin.password}${admin.generated ? `   (generated now, kept in ${path.relative(ROOT, dataDir)}/admin-credentials.json)` : ""}

JWKS: http://127.0.0.1:${ports["identity"]!.admin}/.well-known/jwks.json; the checkout saga: docs/saga.md.
Try the commands in README.md. Ctrl-C stops everything.
`);

async function shutdown(code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  print("\nstopping services, then NATS ...");
  await consoleServer?.close();
  // NATS and Jaeger last: services drain their consumers and flush their spans on the way out.
  const infrastructure = ["nats", "jaeger"];
  const services = processes.filter((process) => !infrastructure.includes(process.name));
  await Promise.all(services.map((service) => service.stop("SIGTERM")));
  await Promise.all(processes.filter((process) => infrastructure.includes(process.name)).map((infra) => infra.stop("SIGTERM")));
  print("stopped.");
  process.exit(code);
}

function adminCredentials(): { email: string; password: string; generated: boolean } {
  const email = process.env["MESHWORK_ADMIN_EMAIL"] || "admin@meshwork.local";
  if (process.env["MESHWORK_ADMIN_PASSWORD"]) return { email, password: process.env["MESHWORK_ADMIN_PASSWORD"], generated: false };
  const file = path.join(dataDir, "admin-credentials.json");
  if (fs.existsSync(file)) return { ...(JSON.parse(fs.readFileSync(file, "utf8")) as { email: string; password: string }), generated: false };
  const password = randomBytes(18).toString("base64url");
  fs.mkdirSync(dataDir, { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ email, password }) + "\n", { mode: 0o600 });
  return { email, password, generated: true };
}
