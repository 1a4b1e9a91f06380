import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { jetstreamManager, type JetStreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { IdentityService } from "@meshwork/proto/meshwork/identity/v1/identity_pb.js";
import { freePort, peerEnv, serviceClientEnv, startNats, startService, SERVICES, type ManagedProcess, type ServiceName } from "./system.ts";

export type Protocol = "grpc" | "connect" | "grpc-web";

export interface LocalSystemOptions {
  /** Services to start (all by default). */
  services?: ServiceName[];
  /** Per-service environment, on top of everything else. */
  env?: Partial<Record<ServiceName, NodeJS.ProcessEnv>>;
  /** Environment for every service. */
  commonEnv?: NodeJS.ProcessEnv;
  /** The caller's defaults (log format, admin credentials, hashing cost), below commonEnv. */
  defaultEnv?: NodeJS.ProcessEnv;
  /** Connect over HTTP/1.1 (what curl and browsers use) or HTTP/2. */
  connectHttpVersion?: "1.1" | "2";
  tempPrefix?: string;
  /** Run each service's esbuild bundle (as images do) instead of its .ts sources; build them first. */
  bundled?: boolean;
}

/**
 * A whole Meshwork on loopback with random ports and a temporary data directory: a real
 * nats-server and each service as its own process. The integration tests (TestSystem) and the
 * benchmarks (BenchSystem) are this class with different defaults.
 */
export class LocalSystem {
  readonly dataDir: string;
  natsPort = 0;
  nats: ManagedProcess | undefined;
  readonly processes = new Map<ServiceName, ManagedProcess>();
  readonly ports = new Map<ServiceName, { rpc: number; admin: number }>();
  private readonly options: LocalSystemOptions;
  /** Client secrets of identity's client-credentials grant, fresh for each system. */
  readonly serviceClientEnv = serviceClientEnv();
  private connection: NatsConnection | undefined;

  constructor(options: LocalSystemOptions = {}) {
    this.options = options;
    this.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), options.tempPrefix ?? "meshwork-"));
  }

  async start(): Promise<this> {
    // The OS may hand the same ephemeral port out twice in a row; each must be distinct here.
    const taken = new Set<number>();
    const distinctPort = async (): Promise<number> => {
      for (;;) {
        const port = await freePort();
        if (!taken.has(port)) {
          taken.add(port);
          return port;
        }
      }
    };
    this.natsPort = await distinctPort();
    await this.startNats();
    for (const name of SERVICES) this.ports.set(name, { rpc: await distinctPort(), admin: await distinctPort() });
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
      bundled: this.options.bundled,
      env: {
        MESHWORK_LOG_FORMAT: "json",
        ...peerEnv(Object.fromEntries([...this.ports].map(([peer, { rpc }]) => [peer, rpc]))),
        ...this.serviceClientEnv[name],
        ...this.options.defaultEnv,
        ...this.options.commonEnv,
        ...this.options.env?.[name],
        ...extraEnv,
      },
    });
    this.processes.set(name, service);
    return service;
  }

  /**
   * Another process of a service already running, on ports of its own and with the same settings:
   * replicas for scale-out tests. The caller stops it; `baseUrl`/`client` keep addressing the first.
   */
  async startReplica(name: ServiceName, extraEnv: NodeJS.ProcessEnv = {}): Promise<{ process: ManagedProcess; rpcUrl: string; adminUrl: string }> {
    const rpcPort = await freePort();
    let adminPort = await freePort();
    while (adminPort === rpcPort) adminPort = await freePort();
    const process = await startService({
      name,
      rpcPort,
      adminPort,
      natsPort: this.natsPort,
      dataDir: this.dataDir,
      jwksUrl: `http://127.0.0.1:${this.ports.get("identity")!.admin}/.well-known/jwks.json`,
      env: {
        MESHWORK_LOG_FORMAT: "json",
        ...peerEnv(Object.fromEntries([...this.ports].map(([peer, { rpc }]) => [peer, rpc]))),
        ...this.serviceClientEnv[name],
        ...this.options.defaultEnv,
        ...this.options.commonEnv,
        ...this.options.env?.[name],
        ...extraEnv,
      },
    });
    return { process, rpcUrl: `http://127.0.0.1:${rpcPort}`, adminUrl: `http://127.0.0.1:${adminPort}` };
  }

  async stopService(name: ServiceName, signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    const service = this.processes.get(name);
    this.processes.delete(name);
    return (await service?.stop(signal)) ?? null;
  }

  async restartService(name: ServiceName, extraEnv: NodeJS.ProcessEnv = {}): Promise<ManagedProcess> {
    await this.stopService(name);
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
    return createConnectTransport({ baseUrl, httpVersion: this.options.connectHttpVersion ?? "1.1", interceptors });
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
