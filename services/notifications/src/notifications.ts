import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { PermissionDeniedError, uuidv7, type Principal, type ServiceContext } from "@meshwork/platform";
import type { UserEvent_AccountClosureRequested } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { NotificationEvent_NotificationSentSchema } from "@meshwork/proto/meshwork/notifications/v1/events_pb.js";
import type { Transaction } from "kysely";
import type { NotificationsConfig } from "./config.ts";
import { farewell } from "./domain/messages.ts";
import { notificationEvents } from "./events.ts";
import { insertNotification, notificationsFor, type NotificationRecord, type NotificationsDatabase, type NotificationsTables } from "./store.ts";

/** notifications' use cases: record what is sent, with its event, in one transaction (the outbox). */
export class Notifications {
  private readonly context: ServiceContext<NotificationsTables, NotificationsConfig>;

  constructor(context: ServiceContext<NotificationsTables, NotificationsConfig>) {
    this.context = context;
  }

  /** Records the farewell for a closing account and announces it; a redelivered request sends nothing twice. */
  async sayFarewell(trx: Transaction<NotificationsDatabase>, request: UserEvent_AccountClosureRequested): Promise<void> {
    const message = farewell(request.displayName, this.context.config.NOTIFICATIONS_SENDER_NAME);
    const notification: NotificationRecord = { id: uuidv7(), userId: request.userId, recipient: request.email, sentAt: Date.now(), ...message };
    if (!(await insertNotification(trx, notification))) return;
    await notificationEvents.emit(trx, notification.id, {
      case: "notificationSent",
      value: create(NotificationEvent_NotificationSentSchema, { notificationId: notification.id, userId: notification.userId, kind: notification.kind, occurredAt: timestampNow() }),
    });
    this.context.log.info({ userId: notification.userId, kind: notification.kind }, "notification sent");
  }

  /** A user's messages, to that user or an admin. */
  async list(userId: string, principal: Principal): Promise<NotificationRecord[]> {
    if (principal.userId !== userId && !principal.roles.includes("admin")) throw new PermissionDeniedError("only the user or an admin may read a user's notifications");
    return notificationsFor(this.context.database.db, userId);
  }
}
