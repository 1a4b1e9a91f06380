/**
 * `make dev`: nats-server with JetStream, then every service in the manifest (services/<name>/
 * package.json) as a separate process, each ready before the table of endpoints is printed.
 * Ctrl-C stops everything in order.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { DEFAULT_PORTS, MANIFEST, peerEnv, ROOT, SERVICES, startNats, startService, type ManagedProcess } from "./lib/system.ts";

const started = performance.now();
const dataDir = path.resolve(ROOT, process.env["MESHWORK_DEV_DATA_DIR"] ?? ".data");
// Shifts every port, so a second copy (the test of `make dev` itself) can run beside the first.
const offset = Number(process.env["MESHWORK_DEV_PORT_OFFSET"] ?? 0);
const natsPort = Number(process.env["NATS_PORT"] ?? 4222) + offset;
const ports: typeof DEFAULT_PORTS = Object.fromEntries(SERVICES.map((name) => [name, { rpc: DEFAULT_PORTS[name]!.rpc + offset, admin: DEFAULT_PORTS[name]!.admin + offset }]));
const admin = adminCredentials();
const processes: ManagedProcess[] = [];
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
      },
    });
  // Producers first, together; then the consumers, which are ready once the streams they read exist.
  const consumers = new Set(MANIFEST.filter((service) => service.consumes.length > 0).map((service) => service.name));
  processes.push(...(await Promise.all(SERVICES.filter((name) => !consumers.has(name)).map(start))));
  processes.push(...(await Promise.all(SERVICES.filter((name) => consumers.has(name)).map(start))));
} catch (error) {
  print(`\nmake dev failed: ${(error as Error).message}`);
  await shutdown(1);
}

print(`
Meshwork is up in ${((performance.now() - started) / 1000).toFixed(1)} s.

  service    rpc (gRPC, gRPC-Web, Connect)   admin (/healthz /readyz /metrics)
${SERVICES.map((name) => `  ${name.padEnd(10)} http://127.0.0.1:${ports[name]!.rpc}          http://127.0.0.1:${ports[name]!.admin}`).join("\n")}
  nats       nats://127.0.0.1:${natsPort} (JetStream, data in ${path.relative(ROOT, dataDir) || "."}/nats)

  admin      ${admin.email} / ${admin.password}${admin.generated ? `   (generated now, kept in ${path.relative(ROOT, dataDir)}/admin-credentials.json)` : ""}

JWKS: http://127.0.0.1:${ports["identity"]!.admin}/.well-known/jwks.json; the checkout saga: docs/saga.md.
Try the commands in README.md. Ctrl-C stops everything.
`);

async function shutdown(code = 0): Promise<void> {
  if (stopping) return;
  stopping = true;
  print("\nstopping services, then NATS ...");
  const services = processes.filter((process) => process.name !== "nats");
  await Promise.all(services.map((service) => service.stop("SIGTERM")));
  await Promise.all(processes.filter((process) => process.name === "nats").map((nats) => nats.stop("SIGTERM")));
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
