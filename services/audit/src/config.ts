import { baseConfigSchema, loadConfig, manifestPorts } from "@meshwork/platform";
import { z } from "zod";
import { AUDITED_STREAMS } from "./audited.generated.ts";

const auditConfigSchema = baseConfigSchema.extend({
  ...manifestPorts(import.meta.url),
  /**
   * The event streams audit keeps, comma-separated; by default every stream another service of the
   * manifest produces. Each gets its own durable consumer.
   */
  AUDIT_STREAMS: z
    .string()
    .default(AUDITED_STREAMS.join(","))
    .transform((value) => value.split(",").map((name) => name.trim()).filter(Boolean)),
});

export type AuditConfig = z.infer<typeof auditConfigSchema>;

export function auditConfig(env: NodeJS.ProcessEnv = process.env): AuditConfig {
  return loadConfig(auditConfigSchema, env);
}
