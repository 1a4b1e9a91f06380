import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { freePort, peerEnv, startNats, startService, SERVICES, type ManagedProcess, type ServiceName } from "../../scripts/lib/system.ts";

export type Protocol = "grpc" | "connect" | "grpc-web";
export const PROTOCOLS: Protocol[] = ["grpc", "connect", "grpc-web"];

/** Fast hashing for tests that sign in hundreds of times; the timing test sets its own. */
export const FAST_ARGON2 = { ARGON2_MEMORY_KIB: "1024", ARGON2_ITERATIONS: "1" };
export const ADMIN = { email: "admin@meshwork.test", password: "an-admin-passphrase-for-tests" };

export interface SystemOptions {
  services?: ServiceName[];
  env?: Partial<Record<ServiceName, NodeJS.ProcessEnv>>;
  commonEnv?: NodeJS.ProcessEnv;
}

/**
 * A whole Meshwork on loopback with random ports and a temporary data directory: a real
 * nats-server and each service as its own process.
 */
export class TestSystem {
  readonly dataDir: string;
  natsPort = 0;
  nats: ManagedProcess | undefined;
  readonly processes = new Map<ServiceName, ManagedProcess>();
  readonly ports = new Map<ServiceName, { rpc: number; admin: number }>();
  private readonly options: SystemOptions;
  private connection: NatsConnection | undefined;

  constructor(options: SystemOptions = {}) {
    this.options = options;
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "meshwork-test-"));
  }

  async start(): Promise<this> {
    this.natsPort = await freePort();
    await this.startNats();
    for (const name of SERVICES) this.ports.set(name, { rpc: await freePort(), admin: await freePort() });
    const wanted = this.options.services ?? [...SERVICES];
    for (const name of wanted) await this.startService(name);
    return this;
  }

  async startNats(): Promise<void> {
    this.nats = await startNats({ port: this.natsPort, dataDir: path.join(this.dataDir, "nats") });
  }

  async stopNats(): Promise<void> {
    await this.connection?.close().catch(() => undefined);
    this.connection = undefined;
    await this.nats?.stop("SIGTERM");
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
      env: {
        MESHWORK_LOG_FORMAT: "json",
        MESHWORK_ADMIN_EMAIL: ADMIN.email,
        MESHWORK_ADMIN_PASSWORD: ADMIN.password,
        JWKS_REFETCH_FLOOR_MS: "200",
        ...peerEnv(Object.fromEntries([...this.ports].map(([peer, { rpc }]) => [peer, rpc]))),
        ...FAST_ARGON2,
        ...this.options.commonEnv,
        ...this.options.env?.[name],
        ...extraEnv,
      },
    });
    this.processes.set(name, service);
    return service;
  }

  async stopService(name: ServiceName, signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    const service = this.processes.get(name);
    this.processes.delete(name);
    return (await service?.stop(signal)) ?? null;
  }

  baseUrl(name: ServiceName): string {
    return `http://127.0.0.1:${this.ports.get(name)!.rpc}`;
  }

  adminUrl(name: ServiceName): string {
    return `http://127.0.0.1:${this.ports.get(name)!.admin}`;
  }

  transport(name: ServiceName, protocol: Protocol = "connect", token?: string): Transport {
    const interceptors: Interceptor[] = token
      ? [
          (next) => (req) => {
            req.header.set("authorization", `Bearer ${token}`);
            return next(req);
          },
        ]
      : [];
    const baseUrl = this.baseUrl(name);
    if (protocol === "grpc") return createGrpcTransport({ baseUrl, interceptors });
    if (protocol === "grpc-web") return createGrpcWebTransport({ baseUrl, httpVersion: "1.1", interceptors });
    return createConnectTransport({ baseUrl, httpVersion: "1.1", interceptors });
  }

  client<S extends DescService>(service: S, name: ServiceName, protocol: Protocol = "connect", token?: string): Client<S> {
    return createClient(service, this.transport(name, protocol, token));
  }

  async natsConnection(): Promise<NatsConnection> {
    this.connection ??= await connect({ servers: `127.0.0.1:${this.natsPort}` });
    return this.connection;
  }

  async jsm(): Promise<JetStreamManager> {
    return jetstreamManager(await this.natsConnection());
  }

  /** Signs up (when needed) and signs in; returns the token. */
  async signIn(email: string, password: string, displayName = email.split("@")[0]!, protocol: Protocol = "connect"): Promise<string> {
    const identity = this.client(IdentityService, "identity", protocol);
    await identity.signUp({ email, password, displayName }).catch((error: Error) => {
      if (!/already exists|exists/i.test(error.message)) throw error;
    });
    return (await identity.signIn({ email, password })).accessToken;
  }

  /** Everything every process printed so far. */
  allOutput(): string {
    return [this.nats, ...this.processes.values()].map((process) => process?.output() ?? "").join("\n");
  }

  async stop(): Promise<void> {
    await Promise.all([...this.processes.keys()].map((name) => this.stopService(name)));
    await this.stopNats();
    fs.rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export async function adminToken(system: TestSystem): Promise<string> {
  return system.signIn(ADMIN.email, ADMIN.password);
}
