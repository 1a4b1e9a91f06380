import { baseConfigSchema, loadConfig, manifestPorts } from "@meshwork/platform";
import { z } from "zod";

const notificationsConfigSchema = baseConfigSchema.extend({
  ...manifestPorts(import.meta.url),
  /** The name the farewell message is signed with. */
  NOTIFICATIONS_SENDER_NAME: z.string().min(1).default("The Meshwork team"),
});

export type NotificationsConfig = z.infer<typeof notificationsConfigSchema>;

export function notificationsConfig(env: NodeJS.ProcessEnv = process.env): NotificationsConfig {
  return loadConfig(notificationsConfigSchema, env);
}
