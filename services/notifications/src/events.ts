import { defineVariantConsumer, eventEmitter, type StreamSpec } from "@meshwork/platform";
import { UserEventSchema, type UserEvent_AccountClosureRequested } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { NotificationEventSchema } from "@meshwork/proto/meshwork/notifications/v1/events_pb.js";
import type { Transaction } from "kysely";
import type { NotificationsDatabase } from "./store.ts";

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
    defineVariantConsumer({
      name: "notifications-farewell",
      stream: "IDENTITY",
      subject: "identity.v1.user.account_closure_requested",
      schema: UserEventSchema,
      variant: "accountClosureRequested",
      maxDeliver: 10,
      handle: (request, trx: Transaction<NotificationsDatabase>) => onClosure(trx, request),
    }),
  ];
}
