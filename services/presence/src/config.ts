import { baseConfigSchema, loadConfig, manifestPorts } from "@meshwork/platform";
import { z } from "zod";

const presenceConfigSchema = baseConfigSchema.extend({
  ...manifestPorts(import.meta.url),
  /** How often expired sessions are swept from the projection. */
  EXPIRY_SWEEP_SECONDS: z.coerce.number().int().min(1).default(60),
  /** How often the projection is read while someone watches the count (WatchOnlineCount). */
  WATCH_POLL_MS: z.coerce.number().int().min(50).default(500),
  /** WatchOnlineCount sends at least one message this often, changed or not. */
  WATCH_HEARTBEAT_SECONDS: z.coerce.number().int().min(1).default(5),
  /** When meshwork.presence.v1.PresenceService stops being served (docs/versioning.md). */
  PRESENCE_V1_SUNSET: z.coerce.date().default(new Date("2027-06-30T00:00:00Z")),
});

export type PresenceConfig = z.infer<typeof presenceConfigSchema>;

export function presenceConfig(env: NodeJS.ProcessEnv = process.env): PresenceConfig {
  return loadConfig(presenceConfigSchema, env);
}
