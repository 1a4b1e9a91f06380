import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import type { DescService } from "@bufbuild/protobuf";
import { freePort, startNats, startService, SERVICES, type ManagedProcess, type ServiceName } from "../../scripts/lib/system.ts";

export const BENCH_ADMIN = { email: "admin@meshwork.bench", password: "a-benchmark-admin-passphrase" };

export interface BenchSystemOptions {
  services: ServiceName[];
  /** Environment for every service (on top of the defaults below). */
  commonEnv?: NodeJS.ProcessEnv;
  env?: Partial<Record<ServiceName, NodeJS.ProcessEnv>>;
}

/**
 * The real system for a benchmark: nats-server and the chosen services as separate processes on
 * random loopback ports with a temporary data directory, started through scripts/lib/system.ts
 * like `make dev` and the integration tests. Unlike the tests it keeps identity's production
 * argon2 parameters and JSON logs at warn level (log volume is not what we measure).
 */
export class BenchSystem {
  readonly dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-bench-"));
  natsPort = 0;
  nats: ManagedProcess | undefined;
  readonly processes = new Map<ServiceName, ManagedProcess>();
  readonly ports = new Map<ServiceName, { rpc: number; admin: number }>();
  private readonly options: BenchSystemOptions;
  private connection: NatsConnection | undefined;

  constructor(options: BenchSystemOptions) {
    this.options = options;
  }

  async start(): Promise<this> {
    this.natsPort = await freePort();
    this.nats = await startNats({ port: this.natsPort, dataDir: path.join(this.dataDir, "nats") });
    for (const name of SERVICES) this.ports.set(name, { rpc: await freePort(), admin: await freePort() });
    for (const name of this.options.services) await this.startService(name);
    return this;
  }

  serviceEnv(name: ServiceName, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return {
      MESHWORK_LOG_FORMAT: "json",
      LOG_LEVEL: "warn",
      MESHWORK_ADMIN_EMAIL: BENCH_ADMIN.email,
      MESHWORK_ADMIN_PASSWORD: BENCH_ADMIN.password,
      ...this.options.commonEnv,
      ...this.options.env?.[name],
      ...extra,
    };
  }

  async startService(name: ServiceName, extraEnv: NodeJS.ProcessEnv = {}, waitUntilReady = true): Promise<ManagedProcess> {
    const ports = this.ports.get(name)!;
    const service = await startService({
      name,
      rpcPort: ports.rpc,
      adminPort: ports.admin,
      natsPort: this.natsPort,
      dataDir: this.dataDir,
      jwksUrl: `http://127.0.0.1:${this.ports.get("identity")!.admin}/.well-known/jwks.json`,
      waitUntilReady,
      env: this.serviceEnv(name, extraEnv),
    });
    this.processes.set(name, service);
    return service;
  }

  async restartService(name: ServiceName, extraEnv: NodeJS.ProcessEnv = {}): Promise<ManagedProcess> {
    await this.processes.get(name)?.stop("SIGTERM");
    this.processes.delete(name);
    return this.startService(name, extraEnv);
  }

  pid(name: ServiceName): number {
    return this.processes.get(name)!.child.pid!;
  }

  baseUrl(name: ServiceName): string {
    return `http://127.0.0.1:${this.ports.get(name)!.rpc}`;
  }

  adminUrl(name: ServiceName): string {
    return `http://127.0.0.1:${this.ports.get(name)!.admin}`;
  }

  transport(name: ServiceName, protocol: "grpc" | "connect", token?: string): Transport {
    const interceptors: Interceptor[] = token
      ? [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${token}`);
            return next(req);
          },
        ]
      : [];
    const baseUrl = this.baseUrl(name);
    return protocol === "grpc" ? createGrpcTransport({ baseUrl, interceptors }) : createConnectTransport({ baseUrl, httpVersion: "2", interceptors });
  }

  client<S extends DescService>(service: S, name: ServiceName, protocol: "grpc" | "connect" = "grpc", token?: string): Client<S> {
    return createClient(service, this.transport(name, protocol, token));
  }

  async natsConnection(): Promise<NatsConnection> {
    this.connection ??= await connect({ servers: `127.0.0.1:${this.natsPort}` });
    return this.connection;
  }

  /** Signs up (when needed) and signs in over gRPC; returns the access token. */
  async signIn(email: string, password: string): Promise<string> {
    const identity = this.client(IdentityService, "identity", "grpc");
    await identity.signUp({ email, password, displayName: email.split("@")[0]! }).catch((error: Error) => {
      if (!/exists/i.test(error.message)) throw error;
    });
    return (await identity.signIn({ email, password })).accessToken;
  }

  async stop(): Promise<void> {
    await this.connection?.close().catch(() => undefined);
    await Promise.all([...this.processes.values()].map((service) => service.stop("SIGTERM")));
    this.processes.clear();
    await this.nats?.stop("SIGTERM");
    await sleep(50);
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Resident set size (VmRSS) and its peak (VmHWM) of a process, in MiB, from /proc. */
export function memoryOf(pid: number): { rssMiB: number; hwmMiB: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (field: string) => Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1] ?? NaN);
  return { rssMiB: kib("VmRSS") / 1024, hwmMiB: kib("VmHWM") / 1024 };
}
