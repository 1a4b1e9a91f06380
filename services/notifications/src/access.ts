import { defineAccess, rulesFor, SIGNED_IN } from "@meshwork/platform";
import { NotificationsService } from "@meshwork/proto/meshwork/notifications/v1/notifications_pb.js";

/** notifications' access table: enforced by the platform's request gate and rendered into the mesh policy. */
export const access = defineAccess(
  rulesFor(NotificationsService, {
    // The user or an admin: the use case checks whose messages the caller may read.
    ListNotifications: SIGNED_IN,
  }),
);
