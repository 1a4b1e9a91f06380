import path from "node:path";
import { baseConfigSchema, loadConfig, manifestPorts } from "@meshwork/platform";
import { z } from "zod";

const identityConfigSchema = baseConfigSchema.extend({
  ...manifestPorts(import.meta.url),
  /** A JWK set of EC P-256 private keys, or one PEM key; created for local development when absent. */
  SIGNING_KEYS_FILE: z.string().optional(),
  ACCESS_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(86_400).default(900),
  MESHWORK_ADMIN_EMAIL: z.string().email().optional(),
  MESHWORK_ADMIN_PASSWORD: z.string().min(1).optional(),
  // OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
  ARGON2_MEMORY_KIB: z.coerce.number().int().min(1024).default(19_456),
  ARGON2_ITERATIONS: z.coerce.number().int().min(1).default(2),
  ARGON2_PARALLELISM: z.coerce.number().int().min(1).default(1),
  PASSWORD_MIN_LENGTH: z.coerce.number().int().min(8).default(12),
  THROTTLE_ACCOUNT_FAILURES: z.coerce.number().int().min(1).default(10),
  THROTTLE_ADDRESS_FAILURES: z.coerce.number().int().min(1).default(100),
  THROTTLE_WINDOW_SECONDS: z.coerce.number().int().min(1).default(900),
  /**
   * The registered service clients of the client-credentials grant (IssueServiceToken): a mounted
   * Kubernetes Secret with one file per client named after it, and/or (development) a list
   * "orders=<secret>,notifications=<secret>".
   */
  SERVICE_CLIENTS_DIR: z.string().optional(),
  SERVICE_CLIENTS: z.string().optional(),
  SERVICE_TOKEN_TTL_SECONDS: z.coerce.number().int().min(30).max(3_600).default(600),
  /**
   * How long an account closure may wait for its participants' reports before it is marked STUCK
   * (and alerted on). A report that arrives later still closes the account.
   */
  ACCOUNT_CLOSURE_TIMEOUT_SECONDS: z.coerce.number().int().min(1).default(3_600),
  /** Create the signing key file when it is missing (local development only). */
  SIGNING_KEYS_AUTOCREATE: z.enum(["true", "false"]).default("true"),
});

export type IdentityConfig = z.infer<typeof identityConfigSchema>;

export function identityConfig(env: NodeJS.ProcessEnv = process.env): IdentityConfig {
  return loadConfig(identityConfigSchema, env);
}

export function signingKeysFile(config: IdentityConfig): string {
  return config.SIGNING_KEYS_FILE ?? path.join(config.DATA_DIR, "identity", "signing-keys.json");
}
