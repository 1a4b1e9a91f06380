import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { loadServices, ROOT } from "./services.ts";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { access as identityAccess } from "../../services/identity/src/access.ts";

/**
 * Starts and stops the real processes of a local Meshwork: nats-server and each service. Used by
 * `make dev`, the integration tests and the benchmarks, so all three run the system the same way.
 */

export { ROOT };

/** Every service from the manifest (each services/<name>/package.json), in start order. */
export const MANIFEST = loadServices();
export const SERVICES: readonly string[] = MANIFEST.map((service) => service.name);
export type ServiceName = string;

export const DEFAULT_PORTS: Record<ServiceName, { rpc: number; admin: number }> = Object.fromEntries(
  MANIFEST.map((service) => [service.name, { rpc: service.rpcPort, admin: service.adminPort }]),
);

/** Where services find each other's RPC ports: `<NAME>_URL` for every service some service calls. */
export function peerEnv(rpcPorts: Partial<Record<ServiceName, number>>): NodeJS.ProcessEnv {
  const called = new Set(MANIFEST.flatMap((service) => service.calls));
  return Object.fromEntries(
    [...called].filter((name) => rpcPorts[name]).map((name) => [`${name.toUpperCase().replaceAll("-", "_")}_URL`, `http://127.0.0.1:${rpcPorts[name]}`]),
  );
}

/**
 * The services registered as clients of identity's client-credentials grant: those its access
 * table lets call IssueServiceToken (the same list the chart's Secret is rendered from).
 */
export function serviceClients(): string[] {
  const grant = `/${IdentityService.typeName}/IssueServiceToken`;
  return Object.entries(identityAccess.callers)
    .filter(([, paths]) => paths.includes(grant))
    .map(([name]) => name)
    .sort();
}

/** A fresh secret per service client: identity gets the registry, each client its own secret. */
export function serviceClientEnv(): Partial<Record<ServiceName, NodeJS.ProcessEnv>> {
  const secrets = serviceClients().map((name) => [name, randomBytes(24).toString("base64url")] as const);
  const env: Partial<Record<ServiceName, NodeJS.ProcessEnv>> = { identity: { SERVICE_CLIENTS: secrets.map(([name, secret]) => `${name}=${secret}`).join(",") } };
  for (const [name, secret] of secrets) env[name as ServiceName] = { SERVICE_CLIENT_SECRET: secret };
  return env;
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
  /** Run the esbuild bundle (services/<name>/dist/main.mjs, scripts/bundle-services.ts) as images do, instead of the .ts sources. */
  bundled?: boolean;
  /** How long to wait for /readyz (default 20 s). */
  readyTimeoutMs?: number;
}

/**
 * Caps the young generation at 16 MiB (two 8 MiB semi-spaces). V8 sizes it from the machine's
 * memory when no cgroup limit says otherwise: on the 24 GiB development machine a busy presence
 * grew it to 128 MiB and peaked at 249-299 MiB under 6 s of GetOnlineCount at 16 in flight,
 * against 203-227 MiB capped, at the same request rate within the run's noise (five interleaved
 * pairs, docs/performance.md). 16 MiB is what start-up alone grew it to; a cap of 1 or 2 MiB did
 * cost RPC throughput (measured, same page), so the cap stays at 8.
 */
export const YOUNG_GENERATION_FLAG = "--max-semi-space-size=8";

/**
 * Exposes V8's collector from the start, for the one memory-reducing collection after a service
 * starts serving (services/platform/src/heap.ts). Setting the flag at run time instead doubled
 * presence's CPU per event in the event pipeline for the rest of the process's life (three-run
 * pairs, docs/performance.md).
 */
export const HEAP_RELEASE_FLAG = "--expose-gc";

/**
 * Node's flags for a bundled service, exactly as services/Dockerfile's ENTRYPOINT and the Tiltfile
 * give them (test/integration/bundle.spec.ts checks both): the young generation's cap and the
 * start-up heap release's collector. No `--enable-source-maps`: the bundle maps its own stack
 * traces to the TypeScript and reads its source map only on the first trace
 * (services/platform/src/stack-traces.ts); Node's flag cost ~80 ms of CPU at start and 5 MiB idle.
 */
export const BUNDLE_NODE_FLAGS = [YOUNG_GENERATION_FLAG, HEAP_RELEASE_FLAG];

/**
 * The environment every service process starts with, exactly as services/Dockerfile sets it
 * (test/integration/bundle.spec.ts checks both; Tilt runs that image). glibc's malloc gives a
 * thread that allocates an arena of its own, up to eight per core, and each keeps its freed
 * pages; two arenas take 2.6 MiB off an idle service (presence 83.9 against 86.5 MiB, identity 90
 * against 92.5) and 5 MiB off identity's peak, with no cost measured on argon2id's threads or the
 * RPC path (sign-ins per second and CPU per sign-in at concurrency 1 and 8, CPU per
 * GetOnlineCount call: three interleaved pairs, docs/performance.md).
 *
 * `MIMALLOC_EAGER_COMMIT=0` is for the one native addon with an allocator of its own: identity's
 * `@node-rs/argon2` links mimalloc, which by default commits a thread's first 32 MiB segment at
 * once, and on Linux with transparent huge pages the kernel backs its first 2 MiB with a huge
 * page as soon as the addon loads: 2 MiB resident for nothing. Committed on demand, it is not;
 * the hashes' own 19 MiB stay on huge pages, so their page faults and CPU are unchanged (a bare
 * Node hashing 40 times: 14,2xx minor faults and 15-16 ms of CPU per hash either way,
 * docs/performance.md). `MIMALLOC_ALLOW_THP=0` would free the same 2 MiB but doubles the CPU
 * per hash (a fault per 4 KiB page of every hash's 19 MiB).
 */
export const SERVICE_PROCESS_ENV: Readonly<Record<string, string>> = { MALLOC_ARENA_MAX: "2", MIMALLOC_EAGER_COMMIT: "0" };

/** The node arguments that start a service: its bundle (as in images) or its TypeScript sources (make dev). */
export function serviceArgs(name: ServiceName, bundled = false): string[] {
  return bundled
    ? [...BUNDLE_NODE_FLAGS, `services/${name}/dist/main.mjs`]
    : [YOUNG_GENERATION_FLAG, HEAP_RELEASE_FLAG, "--import", "@meshwork/platform/telemetry-register.ts", `services/${name}/src/main.ts`];
}

export async function startService(options: ServiceOptions): Promise<ManagedProcess> {
  const service = spawnManaged(
    options.name,
    process.execPath,
    serviceArgs(options.name, options.bundled),
    {
      onLine: options.onLine,
      env: {
        ...SERVICE_PROCESS_ENV,
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
        waitForReady(`http://127.0.0.1:${options.adminPort}/readyz`, options.name, options.readyTimeoutMs),
        service.exited.then((code) => {
          throw new Error(`${options.name} exited with ${code} before it was ready:\n${service.output()}`);
        }),
      ]);
    } catch (error) {
      // Nobody else holds this process yet: left running, it would outlive the run (and keep it open).
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
