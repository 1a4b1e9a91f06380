import type { DescService } from "@bufbuild/protobuf";
import type { ConnectRouter } from "@connectrpc/connect";
import { jetstream } from "@nats-io/jetstream";
import type { Kysely, Transaction } from "kysely";
import { startAdminServer, type AdminRoute } from "./admin.ts";
import type { AccessTable } from "./auth/access.ts";
import { createTokenVerifier, remoteKeys } from "./auth/verifier.ts";
import type { JWTVerifyGetKey } from "jose";
import { databaseUrlFor, type BaseConfig } from "./config.ts";
import { openDatabase, type Database, type Migrations, type PlatformTables } from "./db/database.ts";
import { ConsumerRunner, type ConsumerSpec } from "./events/consumer.ts";
import { connectNats, type NatsHandle } from "./events/nats.ts";
import { OutboxRelay } from "./events/outbox.ts";
import { DEADLETTER_STREAM, ensureStreams, type StreamSpec } from "./events/topology.ts";
import { parseFaults } from "./faults.ts";
import { releaseStartUpHeap } from "./heap.ts";
import { createLogger, type Logger } from "./logger.ts";
import { DEPRECATED_APIS } from "@meshwork/proto/deprecations.ts";
import { deprecationsInForce } from "./rpc/deprecation.ts";
import { serverPipeline } from "./rpc/pipeline.ts";
import { Health, registerHealth } from "./rpc/health.ts";
import { registerReflection } from "./rpc/reflection.ts";
import { startRpcServer } from "./rpc/server.ts";
import { assertRulesCompile } from "./rpc/validation.ts";
import { shutdownTelemetry } from "./telemetry.ts";
import { Workers, type Worker } from "./workers.ts";

/** What the platform hands a service while it wires itself up. */
export interface ServiceContext<Tables, Config extends BaseConfig = BaseConfig> {
  name: string;
  config: Config;
  log: Logger;
  database: Database<Tables>;
  nats: NatsHandle;
  /**
   * Runs `work` in one database transaction and wakes the outbox relay after the commit: the
   * unit of work for any state change that emits events (enqueue them with enqueueEvent).
   */
  unitOfWork<T>(work: (trx: Transaction<Tables & PlatformTables>) => Promise<T>): Promise<T>;
  /** The running consumer with this durable name (for rebuilds and replays). */
  consumer(name: string): ConsumerRunner<Tables>;
  /**
   * Aborted when shutdown begins. Long-lived server streams end on it, so they do not hold the
   * shutdown for the whole grace period the way an unfinished unary call may.
   */
  shutdownSignal: AbortSignal;
}

/** What a service's `setup` hands back: everything it serves and runs, built from the context. */
export interface ServiceParts<Tables> {
  routes(router: ConnectRouter): void;
  adminRoutes?: Record<string, AdminRoute>;
  consumers?: ConsumerSpec<Tables>[];
  /** Background work, started once the service serves and stopped before anything it uses closes. */
  workers?: Worker[];
  /** How to verify access tokens; by default identity's JWKS over HTTP. */
  tokenKeys?: JWTVerifyGetKey;
}

/** What a service declares: its wiring, nothing else. */
export interface ServiceDefinition<Tables, Config extends BaseConfig> {
  name: string;
  config: Config;
  migrations: Migrations;
  /** The protobuf services it serves (for health and the access table). */
  services: DescService[];
  access: AccessTable;
  /**
   * Cache-Control for Connect GET answers of side-effect-free methods, by RPC path, for answers
   * that are the same for everyone; every other GET answer is `no-store`.
   */
  cacheControl?: Record<string, string>;
  /** Streams this service produces to; created or updated at every start. */
  streams?: StreamSpec[];
  /**
   * Builds the service from its context once the database, NATS and the outbox are there, before
   * anything is served: work done here (identity creating its first admin) finishes first.
   */
  setup(context: ServiceContext<Tables, Config>): ServiceParts<Tables> | Promise<ServiceParts<Tables>>;
}

export interface RunningService<Tables, Config extends BaseConfig> {
  context: ServiceContext<Tables, Config>;
  rpcPort: number;
  adminPort: number;
  stop(): Promise<void>;
}

/**
 * The chassis: one call wires config, logs, database and migrations, NATS and streams, the outbox
 * relay, consumers, the service's workers, the RPC server (with the call path of rpc/pipeline.ts:
 * auth, telemetry, validation, error mapping) and the admin port, and shuts all of it down in order
 * on SIGTERM.
 */
export async function runService<Tables, Config extends BaseConfig>(
  definition: ServiceDefinition<Tables, Config>,
): Promise<RunningService<Tables, Config>> {
  const { config, name } = definition;
  // The one deprecation table (proto/deprecations.ts) with any incident extension; a bad
  // extension stops the start, and --check-config catches it.
  const deprecations = deprecationsInForce(DEPRECATED_APIS, config.DEPRECATION_EXTENSIONS);
  if (process.argv.includes("--check-config")) {
    // The image build runs this: a buf.validate rule that does not compile fails it here (and in
    // the unit tests), not at start, where compiling every rule cost most of the start's CPU.
    await assertRulesCompile(definition.services);
    console.log(`${name}: configuration is valid`);
    process.exit(0);
  }
  const log = createLogger({ service: name, level: config.LOG_LEVEL, format: config.MESHWORK_LOG_FORMAT });
  const started = performance.now();
  const database = await openDatabase<Tables>(databaseUrlFor(config, name), definition.migrations, { system: name });
  const nats = await connectNats({ url: config.NATS_URL, name, user: config.NATS_USER, password: config.NATS_PASSWORD, log });

  const relay = new OutboxRelay({
    db: database.db as unknown as Kysely<PlatformTables>,
    isPostgres: database.kind === "postgres",
    publisher: jetstream(nats.connection, { timeout: 5_000 }),
    source: `meshwork/${name}`,
    log: log.child({ component: "outbox" }),
    faults: parseFaults(config.MESHWORK_FAULTS),
  });
  // Filled from what setup returns; context.consumer() is only called once the service serves.
  const runners = new Map<string, ConsumerRunner<Tables>>();
  const shutdown = new AbortController();
  const context: ServiceContext<Tables, Config> = {
    name,
    config,
    log,
    database,
    nats,
    async unitOfWork(work) {
      const result = await database.db.transaction().execute(work);
      relay.nudge();
      return result;
    },
    consumer(consumerName) {
      const runner = runners.get(consumerName);
      if (!runner) throw new Error(`no consumer named ${consumerName}`);
      return runner;
    },
    shutdownSignal: shutdown.signal,
  };

  const parts = await definition.setup(context);
  const consumerSpecs = parts.consumers ?? [];
  await ensureStreams(nats.connection, [...(definition.streams ?? []), ...(consumerSpecs.length > 0 ? [DEADLETTER_STREAM] : [])], config.STREAM_REPLICAS);
  for (const spec of consumerSpecs) runners.set(spec.name, new ConsumerRunner<Tables>(spec, database.db, nats.connection, log));
  const workers = new Workers(parts.workers ?? [], log);
  relay.start();

  let shuttingDown = false;
  const consumersReady = () => [...runners.values()].every((runner) => runner.isReady());
  const isReady = () => !shuttingDown && nats.isConnected() && consumersReady() && workers.isHealthy();
  const keys = parts.tokenKeys ?? remoteKeys(config.IDENTITY_JWKS_URL, config.JWKS_REFETCH_FLOOR_MS);
  const verify = createTokenVerifier({ keys, issuer: config.TOKEN_ISSUER, audience: config.TOKEN_AUDIENCE });
  const rpc = await startRpcServer({
    host: config.RPC_HOST,
    port: config.RPC_PORT,
    readMaxBytes: config.RPC_READ_MAX_BYTES,
    directUnary: config.RPC_DIRECT_UNARY,
    trustedProxyHops: config.TRUSTED_PROXY_HOPS,
    allowedOrigins: config.CORS_ALLOWED_ORIGINS,
    ...serverPipeline({
      access: definition.access,
      verify,
      deprecations,
      deprecationClock: deprecationClock(config.MESHWORK_TEST_DEPRECATION_CLOCK),
      cacheControl: definition.cacheControl ?? {},
      log,
    }),
    routes: (router) => {
      registerHealth(router, definition.services.map((service) => service.typeName), isReady);
      registerReflection(router, [Health, ...definition.services]);
      parts.routes(router);
    },
  });
  const admin = await startAdminServer({
    host: config.RPC_HOST,
    port: config.ADMIN_PORT,
    isShuttingDown: () => shuttingDown,
    routes: parts.adminRoutes,
    checks: [
      { name: "database", check: () => database.ping().then(() => true) },
      { name: "nats", check: () => nats.isConnected() },
      { name: "consumers", check: consumersReady },
      { name: "workers", check: () => workers.isHealthy() },
    ],
  });
  // Consumers attach in the background: a service whose upstream stream does not exist yet serves
  // and stays ready (its producer may simply start later), and attaches once the stream appears.
  for (const runner of runners.values()) {
    runner.start().catch((error: Error) => log.error({ err: error.message, consumer: runner.name }, "consumer failed to start"));
  }
  await workers.start();
  releaseStartUpHeap();
  log.info({ rpcPort: rpc.port, adminPort: admin.port, startupMs: Math.round(performance.now() - started) }, `${name} started`);

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      shuttingDown = true;
      shutdown.abort();
      log.info("shutting down: no new calls, finishing in-flight ones");
      // Workers stop while in-flight calls finish, and both before anything they use closes.
      await Promise.all([rpc.close(config.SHUTDOWN_GRACE_MS), workers.stop()]);
      await Promise.all([...runners.values()].map((runner) => runner.stop()));
      await relay.stop();
      await nats.drain().catch(() => undefined);
      await admin.close();
      await database.close();
      await shutdownTelemetry();
      log.info("stopped");
      log.flush?.();
    })());
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    process.once(signal, () => {
      stop().then(
        () => process.exit(0),
        (error: Error) => {
          log.error({ err: error.message }, "unclean shutdown");
          process.exit(1);
        },
      );
    });
  }
  return { context, rpcPort: rpc.port, adminPort: admin.port, stop };
}

/** The deprecation window's clock: the wall clock, or (tests only) one started at a given instant. */
function deprecationClock(startAt: Date | undefined): () => number {
  if (!startAt) return Date.now;
  const offset = startAt.getTime() - Date.now();
  return () => Date.now() + offset;
}
