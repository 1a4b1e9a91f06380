import fs from "node:fs";
import { baseConfigSchema, loadConfig, manifestPorts } from "@meshwork/platform";
import { z } from "zod";

const ordersConfigSchema = baseConfigSchema.extend({
  ...manifestPorts(import.meta.url),
  /** Where the saga's steps go. */
  PAYMENTS_URL: z.string().url().default("http://127.0.0.1:50055"),
  SHIPPING_URL: z.string().url().default("http://127.0.0.1:50056"),
  /** identity's RPC port, where orders trades its client secret for a service token. */
  IDENTITY_URL: z.string().url().default("http://127.0.0.1:50051"),
  /**
   * orders' registered service client (docs/security.md): the saga calls payments and shipping
   * with the service token identity issues for it. The secret comes from a Kubernetes Secret
   * (SERVICE_CLIENT_SECRET_FILE, or the variable itself in development).
   */
  SERVICE_CLIENT_ID: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/).default("orders"),
  SERVICE_CLIENT_SECRET: z.string().min(1).optional(),
  SERVICE_CLIENT_SECRET_FILE: z.string().optional(),
  /** How often the runner looks for sagas to resume, besides being woken by PlaceOrder. */
  SAGA_POLL_MS: z.coerce.number().int().min(10).default(1_000),
  /** How long a runner owns a saga it picked up; another replica may take it over after that. */
  SAGA_LEASE_MS: z.coerce.number().int().min(100).default(30_000),
  SAGA_RETRY_BASE_MS: z.coerce.number().int().min(1).default(500),
  SAGA_RETRY_MAX_MS: z.coerce.number().int().min(1).default(60_000),
  /** Deadline of each step's call to payments or shipping. */
  SAGA_STEP_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
});

export type OrdersConfig = z.infer<typeof ordersConfigSchema>;

export function ordersConfig(env: NodeJS.ProcessEnv = process.env): OrdersConfig {
  return loadConfig(ordersConfigSchema, env);
}

/** orders' client credentials, read when a token is needed (a rotated Secret file is picked up). */
export function serviceClient(config: OrdersConfig): { clientId: string; clientSecret: string } | undefined {
  const secret = config.SERVICE_CLIENT_SECRET_FILE ? fs.readFileSync(config.SERVICE_CLIENT_SECRET_FILE, "utf8").trim() : config.SERVICE_CLIENT_SECRET;
  return secret ? { clientId: config.SERVICE_CLIENT_ID, clientSecret: secret } : undefined;
}

/** How the saga runner polls, leases and backs off, from the SAGA_* settings. */
export function sagaTiming(config: OrdersConfig): { pollMs: number; leaseMs: number; retryBaseMs: number; retryMaxMs: number } {
  return { pollMs: config.SAGA_POLL_MS, leaseMs: config.SAGA_LEASE_MS, retryBaseMs: config.SAGA_RETRY_BASE_MS, retryMaxMs: config.SAGA_RETRY_MAX_MS };
}
