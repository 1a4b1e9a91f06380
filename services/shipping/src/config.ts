import { baseConfigSchema, loadConfig, manifestPorts } from "@meshwork/platform";
import { z } from "zod";

const shippingConfigSchema = baseConfigSchema.extend({
  ...manifestPorts(import.meta.url),
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
