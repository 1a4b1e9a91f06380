import { baseConfigSchema, loadConfig } from "@meshwork/platform";
import { z } from "zod";

const shippingConfigSchema = baseConfigSchema.extend({
  RPC_PORT: z.coerce.number().int().min(0).max(65535).default(50056),
  ADMIN_PORT: z.coerce.number().int().min(0).max(65535).default(9056),
  /** Country codes shipping cannot serve, comma-separated: a shipment there fails (and the saga refunds). */
  SHIPPING_UNSERVICEABLE_COUNTRIES: z
    .string()
    .default("XX")
    .transform((value) => value.split(",").map((code) => code.trim().toUpperCase()).filter(Boolean)),
});

export type ShippingConfig = z.infer<typeof shippingConfigSchema>;

export function shippingConfig(env: NodeJS.ProcessEnv = process.env): ShippingConfig {
  return loadConfig(shippingConfigSchema, env);
}
