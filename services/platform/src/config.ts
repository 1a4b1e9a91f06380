import { readFileSync } from "node:fs";
import path from "node:path";
import { z } from "zod";
import { parseFaults } from "./faults.ts";
import { parseAllowedOrigins } from "./rpc/cors.ts";

/**
 * Settings every service shares. A service extends this schema with its own keys in its
 * config.ts; all of them come from environment variables, with defaults that suit `make dev`.
 */
export const baseConfigSchema = z.object({
  RPC_PORT: z.coerce.number().int().min(0).max(65535),
  ADMIN_PORT: z.coerce.number().int().min(0).max(65535),
  RPC_HOST: z.string().default("0.0.0.0"),
  DATA_DIR: z.string().default(".data"),
  DATABASE_URL: z.string().optional(),
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  NATS_USER: z.string().optional(),
  NATS_PASSWORD: z.string().optional(),
  /** Replicas of every stream this service ensures: 1 on a single server, 3 on a NATS cluster. */
  STREAM_REPLICAS: z.coerce.number().int().min(1).max(5).default(1),
  IDENTITY_JWKS_URL: z.string().url().default("http://127.0.0.1:9051/.well-known/jwks.json"),
  /** At most one JWKS fetch per this interval when tokens name an unknown kid. */
  JWKS_REFETCH_FLOOR_MS: z.coerce.number().int().min(0).default(5_000),
  TOKEN_ISSUER: z.string().default("meshwork-identity"),
  TOKEN_AUDIENCE: z.string().default("meshwork"),
  LOG_LEVEL: z.enum(["trace", "debug", "info", "warn", "error", "fatal", "silent"]).default("info"),
  MESHWORK_LOG_FORMAT: z.enum(["pretty", "json"]).default("pretty"),
  MESHWORK_ENVIRONMENT: z.string().default("local"),
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  /**
   * Browser origins allowed to call the RPC port (CORS), comma-separated; none by default. A
   * port of `*` matches any port: `http://localhost:*` (what `make dev` sets).
   */
  CORS_ALLOWED_ORIGINS: z
    .string()
    .default("")
    .transform((value, ctx) => {
      try {
        return parseAllowedOrigins(value);
      } catch (error) {
        ctx.addIssue({ code: "custom", message: (error as Error).message });
        return z.NEVER;
      }
    }),
  RPC_READ_MAX_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  /**
   * Unary gRPC and Connect POSTs on the platform's direct path (rpc/direct-unary.ts); "false" hands
   * every call to connect-node's own handlers (the benchmark's comparison, and an escape hatch).
   */
  RPC_DIRECT_UNARY: z.enum(["true", "false"]).default("true").transform((value) => value === "true"),
  /**
   * Keeps deprecated APIs served past their sunset during an incident: "<api>=<YYYY-MM-DD>,...",
   * each later than the table's sunset (proto/deprecations.ts, docs/versioning.md).
   */
  DEPRECATION_EXTENSIONS: z.string().default(""),
  /** Test-only: the deprecation window's clock starts at this instant instead of now. */
  MESHWORK_TEST_DEPRECATION_CLOCK: z.coerce.date().optional(),
  /** Proxies in front that append the client's address to X-Forwarded-For: 1 behind the Istio gateway. */
  TRUSTED_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
  /** Faults to inject, for tests and chaos drills (faults.ts, docs/operations.md); empty in normal operation. */
  MESHWORK_FAULTS: z
    .string()
    .default("")
    .superRefine((value, context) => {
      try {
        parseFaults(value);
      } catch (error) {
        context.addIssue({ code: "custom", message: (error as Error).message });
      }
    }),
});

export type BaseConfig = z.infer<typeof baseConfigSchema>;

const port = z.coerce.number().int().min(0).max(65535);

/**
 * RPC_PORT and ADMIN_PORT defaulting to the service's `make dev` ports from the services manifest
 * (the `meshwork` field of its package.json, next to src/), so the ports are written once.
 * `configModuleUrl` is the service's config.ts (`import.meta.url`).
 */
export function manifestPorts(configModuleUrl: string) {
  const manifest = JSON.parse(readFileSync(new URL("../package.json", configModuleUrl), "utf8")) as { meshwork?: { rpcPort?: number; adminPort?: number } };
  const { rpcPort, adminPort } = manifest.meshwork ?? {};
  if (rpcPort === undefined || adminPort === undefined) throw new ConfigError(`${new URL("../package.json", configModuleUrl).pathname}: "meshwork" needs rpcPort and adminPort`);
  return { RPC_PORT: port.default(rpcPort), ADMIN_PORT: port.default(adminPort) };
}

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * Parses the environment against a service's schema. Fails with every problem listed at once,
 * because a deployment that is wrong in three ways should not take three restarts to learn it.
 */
export function loadConfig<S extends z.ZodType<BaseConfig>>(
  schema: S,
  env: NodeJS.ProcessEnv = process.env,
): z.infer<S> {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`);
    throw new ConfigError(`invalid configuration:\n  ${problems.join("\n  ")}`);
  }
  return parsed.data;
}

/** The SQLite file of a service when DATABASE_URL is not set: one file per service, never shared. */
export function databaseUrlFor(config: BaseConfig, serviceName: string): string {
  return config.DATABASE_URL ?? `sqlite:${path.join(config.DATA_DIR, `${serviceName}.db`)}`;
}
