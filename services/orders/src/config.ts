import { baseConfigSchema, loadConfig, manifestPorts } from "@meshwork/platform";
import { z } from "zod";

const ordersConfigSchema = baseConfigSchema.extend({
  ...manifestPorts(import.meta.url),
  /** Where the saga's steps go. */
  PAYMENTS_URL: z.string().url().default("http://127.0.0.1:50055"),
  SHIPPING_URL: z.string().url().default("http://127.0.0.1:50056"),
  /** identity's RPC port, where orders signs in as its service account. */
  IDENTITY_URL: z.string().url().default("http://127.0.0.1:50051"),
  /**
   * The account whose token the saga sends to payments and shipping (docs/saga.md). When unset,
   * the bootstrap admin (MESHWORK_ADMIN_EMAIL / MESHWORK_ADMIN_PASSWORD) is used: fine for
   * `make dev`, not for a shared cluster.
   */
  ORDERS_SERVICE_EMAIL: z.string().email().optional(),
  ORDERS_SERVICE_PASSWORD: z.string().min(1).optional(),
  MESHWORK_ADMIN_EMAIL: z.string().email().optional(),
  MESHWORK_ADMIN_PASSWORD: z.string().min(1).optional(),
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

export function serviceAccount(config: OrdersConfig): { email: string; password: string } | undefined {
  const email = config.ORDERS_SERVICE_EMAIL ?? config.MESHWORK_ADMIN_EMAIL;
  const password = config.ORDERS_SERVICE_PASSWORD ?? config.MESHWORK_ADMIN_PASSWORD;
  return email && password ? { email, password } : undefined;
}

/** How the saga runner polls, leases and backs off, from the SAGA_* settings. */
export function sagaTiming(config: OrdersConfig): { pollMs: number; leaseMs: number; retryBaseMs: number; retryMaxMs: number } {
  return { pollMs: config.SAGA_POLL_MS, leaseMs: config.SAGA_LEASE_MS, retryBaseMs: config.SAGA_RETRY_BASE_MS, retryMaxMs: config.SAGA_RETRY_MAX_MS };
}
