import { runService } from "@meshwork/platform";
import { NotificationsService } from "@meshwork/proto/meshwork/notifications/v1/notifications_pb.js";
import { access } from "./access.ts";
import { notificationsConfig } from "./config.ts";
import { NOTIFICATIONS_STREAM, notificationsConsumers } from "./events.ts";
import { Notifications } from "./notifications.ts";
import { notificationsRoutes } from "./rpc.ts";
import { migrations, type NotificationsTables } from "./store.ts";

const config = notificationsConfig();

await runService<NotificationsTables, typeof config>({
  name: "notifications",
  config,
  migrations,
  services: [NotificationsService],
  access,
  streams: [NOTIFICATIONS_STREAM],
  setup(context) {
    const notifications = new Notifications(context);
    return {
      routes: notificationsRoutes(notifications),
      consumers: notificationsConsumers((trx, request) => notifications.sayFarewell(trx, request)),
    };
  },
});
