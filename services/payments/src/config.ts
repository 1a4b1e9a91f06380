import { baseConfigSchema, loadConfig, manifestPorts } from "@meshwork/platform";
import { z } from "zod";

const paymentsConfigSchema = baseConfigSchema.extend({
  ...manifestPorts(import.meta.url),
  /** The stand-in for a card network's answer: charges above this amount (cents) are declined. */
  PAYMENTS_DECLINE_ABOVE_CENTS: z.coerce.number().int().min(0).default(100_000),
});

export type PaymentsConfig = z.infer<typeof paymentsConfigSchema>;

export function paymentsConfig(env: NodeJS.ProcessEnv = process.env): PaymentsConfig {
  return loadConfig(paymentsConfigSchema, env);
}
