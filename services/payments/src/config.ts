import { baseConfigSchema, loadConfig } from "@meshwork/platform";
import { z } from "zod";

const paymentsConfigSchema = baseConfigSchema.extend({
  RPC_PORT: z.coerce.number().int().min(0).max(65535).default(50055),
  ADMIN_PORT: z.coerce.number().int().min(0).max(65535).default(9055),
  /** The stand-in for a card network's answer: charges above this amount (cents) are declined. */
  PAYMENTS_DECLINE_ABOVE_CENTS: z.coerce.number().int().min(0).default(100_000),
});

export type PaymentsConfig = z.infer<typeof paymentsConfigSchema>;

export function paymentsConfig(env: NodeJS.ProcessEnv = process.env): PaymentsConfig {
  return loadConfig(paymentsConfigSchema, env);
}
