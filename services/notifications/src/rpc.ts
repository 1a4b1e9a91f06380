import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { requirePrincipal } from "@meshwork/platform";
import { ListNotificationsResponseSchema, NotificationSchema, NotificationsService } from "@meshwork/proto/meshwork/notifications/v1/notifications_pb.js";
import type { Notifications } from "./notifications.ts";

/** Thin handlers: the platform has checked the request against its contract rules; call the use case, shape the answer. */
export function notificationsRoutes(notifications: Notifications) {
  return (router: ConnectRouter) =>
    router.service(NotificationsService, {
      async listNotifications(req, ctx) {
        const sent = await notifications.list(req.userId, requirePrincipal(ctx));
        return create(ListNotificationsResponseSchema, {
          notifications: sent.map((notification) => create(NotificationSchema, { ...notification, sentAt: timestampFromMs(notification.sentAt) })),
        });
      },
    });
}
