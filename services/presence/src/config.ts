import { baseConfigSchema, loadConfig } from "@meshwork/platform";
import { z } from "zod";

const presenceConfigSchema = baseConfigSchema.extend({
  RPC_PORT: z.coerce.number().int().min(0).max(65535).default(50052),
  ADMIN_PORT: z.coerce.number().int().min(0).max(65535).default(9052),
  /** How often expired sessions are swept from the projection. */
  EXPIRY_SWEEP_SECONDS: z.coerce.number().int().min(1).default(60),
});

export type PresenceConfig = z.infer<typeof presenceConfigSchema>;

export function presenceConfig(env: NodeJS.ProcessEnv = process.env): PresenceConfig {
  return loadConfig(presenceConfigSchema, env);
}
