import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { freePort, natsServerBinary, spawnManaged, waitFor, type ManagedProcess } from "../../scripts/lib/system.ts";

export interface ClusterServer {
  name: string;
  clientPort: number;
  routePort: number;
  process: ManagedProcess;
}

/**
 * Three nats-servers on loopback as one JetStream cluster (routes between all of them), as the
 * production NATS chart runs them. Each keeps its own store, so a killed server loses nothing the
 * others do not also hold.
 */
export class NatsCluster {
  readonly servers: ClusterServer[] = [];
  private readonly dataDir: string;

  constructor(dataDir: string) {
    this.dataDir = dataDir;
  }

  async start(size = 3): Promise<this> {
    const ports = [];
    for (let index = 0; index < size; index++) ports.push({ client: await freePort(), route: await freePort() });
    const routes = ports.map((port) => `nats://127.0.0.1:${port.route}`).join(",");
    for (const [index, port] of ports.entries()) {
      const name = `nats-${index}`;
      const store = path.join(this.dataDir, name);
      fs.mkdirSync(store, { recursive: true });
      const args = ["-js", "-sd", store, "-a", "127.0.0.1", "-p", String(port.client), "-n", name, "--cluster_name", "meshwork", "--cluster", `nats://127.0.0.1:${port.route}`, "--routes", routes];
      this.servers.push({ name, clientPort: port.client, routePort: port.route, process: spawnManaged(name, natsServerBinary(), args, {}) });
    }
    // Listening first (a busy machine starts them slowly), then ready when JetStream answers: the
    // servers found each other and elected a meta leader.
    for (const server of this.servers) await waitFor(() => listening(server.clientPort), `${server.name} to listen on ${server.clientPort}`, 30_000, 100);
    const connection = await this.connect();
    await waitFor(async () => (await jetstreamManager(connection).then((jsm) => jsm.getAccountInfo()).catch(() => undefined)) !== undefined, "the JetStream cluster to elect a meta leader", 30_000, 250);
    await connection.close();
    return this;
  }

  /** Every server's client URL, comma-separated, as NATS_URL takes it. */
  get url(): string {
    return this.servers.map((server) => `nats://127.0.0.1:${server.clientPort}`).join(",");
  }

  connect(): Promise<NatsConnection> {
    return connect({ servers: this.servers.map((server) => `127.0.0.1:${server.clientPort}`), maxReconnectAttempts: -1, reconnectTimeWait: 250 });
  }

  server(name: string): ClusterServer {
    const server = this.servers.find((candidate) => candidate.name === name);
    if (!server) throw new Error(`no cluster server named ${name}`);
    return server;
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.process.stop("SIGTERM")));
  }
}

function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}
