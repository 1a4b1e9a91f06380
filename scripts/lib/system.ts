import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

/**
 * Starts and stops the real processes of a local Meshwork: nats-server and each service. Used by
 * `make dev`, the integration tests and the benchmarks, so all three run the system the same way.
 */

export const ROOT = path.resolve(import.meta.dirname, "../..");
// Start order: audit last, since it is ready only once every stream it keeps exists.
export const SERVICES = ["identity", "presence", "payments", "shipping", "orders", "audit"] as const;
export type ServiceName = (typeof SERVICES)[number];

export const DEFAULT_PORTS: Record<ServiceName, { rpc: number; admin: number }> = {
  identity: { rpc: 50051, admin: 9051 },
  presence: { rpc: 50052, admin: 9052 },
  audit: { rpc: 50053, admin: 9053 },
  orders: { rpc: 50054, admin: 9054 },
  payments: { rpc: 50055, admin: 9055 },
  shipping: { rpc: 50056, admin: 9056 },
};

/** Where services find each other's RPC ports (orders calls identity, payments and shipping). */
export function peerEnv(rpcPorts: Partial<Record<ServiceName, number>>): NodeJS.ProcessEnv {
  const url = (name: ServiceName) => (rpcPorts[name] ? { [`${name.toUpperCase()}_URL`]: `http://127.0.0.1:${rpcPorts[name]}` } : {});
  return { ...url("identity"), ...url("payments"), ...url("shipping") };
}

export function natsServerBinary(): string {
  const binary = path.join(ROOT, ".tools/bin/nats-server");
  if (!fs.existsSync(binary)) throw new Error(`${binary} is missing: run scripts/install-tools.sh nats`);
  return binary;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export interface ManagedProcess {
  name: string;
  child: ChildProcess;
  /** Everything the process printed, for assertions (secrets must never appear here). */
  output(): string;
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function spawnManaged(
  name: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; onLine?: (line: string) => void; cwd?: string },
): ManagedProcess {
  const child = spawn(command, args, {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  let partial = "";
  const collect = (chunk: Buffer) => {
    const text = chunk.toString();
    output += text;
    if (!options.onLine) return;
    const lines = (partial + text).split("\n");
    partial = lines.pop() ?? "";
    for (const line of lines) options.onLine(line);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))));
  return {
    name,
    child,
    output: () => output,
    exited,
    async stop(signal: NodeJS.Signals = "SIGTERM") {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      const timeout = sleep(15_000).then(() => {
        child.kill("SIGKILL");
        return null;
      });
      return Promise.race([exited, timeout]);
    },
  };
}

export interface NatsOptions {
  port: number;
  dataDir: string;
  onLine?: (line: string) => void;
}

export async function startNats(options: NatsOptions): Promise<ManagedProcess> {
  fs.mkdirSync(options.dataDir, { recursive: true });
  const nats = spawnManaged("nats", natsServerBinary(), ["-js", "-sd", options.dataDir, "-a", "127.0.0.1", "-p", String(options.port)], {
    onLine: options.onLine,
  });
  await waitFor(async () => canConnect(options.port), `nats-server on port ${options.port}`, 10_000);
  return nats;
}

export interface ServiceOptions {
  name: ServiceName;
  rpcPort: number;
  adminPort: number;
  natsPort: number;
  dataDir: string;
  jwksUrl: string;
  env?: NodeJS.ProcessEnv;
  onLine?: (line: string) => void;
  waitUntilReady?: boolean;
}

export async function startService(options: ServiceOptions): Promise<ManagedProcess> {
  const service = spawnManaged(
    options.name,
    process.execPath,
    ["--import", "@meshwork/platform/telemetry-register.ts", `services/${options.name}/src/main.ts`],
    {
      onLine: options.onLine,
      env: {
        RPC_PORT: String(options.rpcPort),
        ADMIN_PORT: String(options.adminPort),
        RPC_HOST: "127.0.0.1",
        NATS_URL: `nats://127.0.0.1:${options.natsPort}`,
        DATA_DIR: options.dataDir,
        IDENTITY_JWKS_URL: options.jwksUrl,
        ...options.env,
      },
    },
  );
  if (options.waitUntilReady !== false) {
    try {
      await Promise.race([
        waitForReady(`http://127.0.0.1:${options.adminPort}/readyz`, options.name),
        service.exited.then((code) => {
          throw new Error(`${options.name} exited with ${code} before it was ready:\n${service.output()}`);
        }),
      ]);
    } catch (error) {
      // The caller never gets a handle to stop it: a process left running would hold its ports
      // and keep a test runner alive.
      await service.stop("SIGKILL");
      throw error;
    }
  }
  return service;
}

export async function waitForReady(url: string, what: string, timeoutMs = 20_000): Promise<void> {
  await waitFor(async () => (await fetch(url).catch(() => undefined))?.ok === true, `${what} ready at ${url}`, timeoutMs);
}

export async function waitFor(condition: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000, intervalMs = 50): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await condition()) return;
    await sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
