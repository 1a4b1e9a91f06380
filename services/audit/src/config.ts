import { baseConfigSchema, loadConfig, manifestPorts } from "@meshwork/platform";
import { z } from "zod";

const auditConfigSchema = baseConfigSchema.extend({
  ...manifestPorts(import.meta.url),
  /** The event streams audit keeps, comma-separated. Each gets its own durable consumer. */
  AUDIT_STREAMS: z
    .string()
    .default("IDENTITY,ORDERS,PAYMENTS,SHIPPING")
    .transform((value) => value.split(",").map((name) => name.trim()).filter(Boolean)),
});

export type AuditConfig = z.infer<typeof auditConfigSchema>;

export function auditConfig(env: NodeJS.ProcessEnv = process.env): AuditConfig {
  return loadConfig(auditConfigSchema, env);
}
