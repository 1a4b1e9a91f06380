import { defineConsumer, eventEmitter, type StreamSpec } from "@meshwork/platform";
import { UserEventSchema, type UserEvent_AccountClosureRequested } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { NotificationEventSchema } from "@meshwork/proto/meshwork/notifications/v1/events_pb.js";
import type { Transaction } from "kysely";
import type { NotificationsDatabase, NotificationsTables } from "./store.ts";

/** notifications publishes what it sent. One stream for the domain, one subject per variant. */
export const NOTIFICATIONS_STREAM: StreamSpec = {
  name: "NOTIFICATIONS",
  subjects: ["notifications.>"],
  duplicateWindowMs: 2 * 60_000,
};

/** The subject of each NotificationEvent variant; `notificationEvents.emit` enqueues one in the caller's transaction (the outbox). */
export const notificationEvents = eventEmitter(NotificationEventSchema, {
  notificationSent: "notifications.v1.notification.sent",
});

/** It hears identity's AccountClosureRequested and says goodbye (its part of the closure choreography). */
export function notificationsConsumers(onClosure: (trx: Transaction<NotificationsDatabase>, request: UserEvent_AccountClosureRequested) => Promise<void>) {
  return [
    defineConsumer<NotificationsTables, typeof UserEventSchema>({
      name: "notifications-farewell",
      stream: "IDENTITY",
      filterSubjects: ["identity.v1.user.account_closure_requested"],
      schema: UserEventSchema,
      maxDeliver: 10,
      backoffMs: [200, 1_000, 5_000],
      handle: async (event, trx) => {
        if (event.message.event.case === "accountClosureRequested") await onClosure(trx, event.message.event.value);
      },
    }),
  ];
}
