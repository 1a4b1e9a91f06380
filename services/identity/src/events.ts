import type { DescMessage, MessageShape } from "@bufbuild/protobuf";
import { defineConsumer, eventEmitter, type ConsumerSpec, type StreamSpec } from "@meshwork/platform";
import { AuditTrailEventSchema } from "@meshwork/proto/meshwork/audit/v1/events_pb.js";
import { UserEventSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { NotificationEventSchema } from "@meshwork/proto/meshwork/notifications/v1/events_pb.js";
import { OrderEventSchema } from "@meshwork/proto/meshwork/orders/v1/events_pb.js";
import { PresenceEventSchema } from "@meshwork/proto/meshwork/presence/v1/events_pb.js";
import type { Transaction } from "kysely";
import type { IdentityDatabase, IdentityTables } from "./store.ts";

/** identity publishes its users' events; it consumes only the participants' closure reports. */
export const IDENTITY_STREAM: StreamSpec = {
  name: "IDENTITY",
  subjects: ["identity.>"],
  duplicateWindowMs: 2 * 60_000,
};

/** The subject of each UserEvent variant; `userEvents.emit` enqueues one in the caller's transaction (the outbox). */
export const userEvents = eventEmitter(UserEventSchema, {
  signedUp: "identity.v1.user.signed_up",
  signedIn: "identity.v1.user.signed_in",
  signedOut: "identity.v1.user.signed_out",
  rolesChanged: "identity.v1.user.roles_changed",
  accountClosureRequested: "identity.v1.user.account_closure_requested",
  accountClosed: "identity.v1.user.account_closed",
});

type RecordReport = (trx: Transaction<IdentityDatabase>, userId: string, participant: string) => Promise<void>;

/** One participant of the account-closure choreography, and the consumer that hears its report. */
interface ClosureParticipant {
  name: string;
  consumer(record: RecordReport): ConsumerSpec<IdentityTables>;
}

/** A participant whose report is `subject` on its own `stream`; `userIdOf` is undefined for any other message. */
function participant<Desc extends DescMessage>(spec: {
  name: string;
  stream: string;
  subject: string;
  schema: Desc;
  userIdOf(message: MessageShape<Desc>): string | undefined;
}): ClosureParticipant {
  return {
    name: spec.name,
    consumer: (record) =>
      defineConsumer<IdentityTables, Desc>({
        name: `identity-closure-${spec.name}`,
        stream: spec.stream,
        filterSubjects: [spec.subject],
        schema: spec.schema,
        maxDeliver: 10,
        backoffMs: [200, 1_000, 5_000],
        handle: async (event, trx) => {
          const userId = spec.userIdOf(event.message);
          if (userId) await record(trx, userId, spec.name);
        },
      }),
  };
}

/**
 * Whom identity awaits before an account is closed, and how each reports. A participant knows
 * nothing of the others or of this list: it reacts to AccountClosureRequested and publishes its
 * own event. Adding a participant is one entry here and its stream in package.json's `consumes`.
 */
export const CLOSURE_PARTICIPANTS: readonly ClosureParticipant[] = [
  participant({
    name: "presence",
    stream: "PRESENCE",
    subject: "presence.v1.user.sessions_ended",
    schema: PresenceEventSchema,
    userIdOf: (message) => (message.event.case === "sessionsEnded" ? message.event.value.userId : undefined),
  }),
  participant({
    name: "orders",
    stream: "ORDERS",
    subject: "orders.v1.account.orders_closed",
    schema: OrderEventSchema,
    userIdOf: (message) => (message.event.case === "accountOrdersClosed" ? message.event.value.userId : undefined),
  }),
  participant({
    name: "audit",
    stream: "AUDIT",
    subject: "audit.v1.user.personal_data_erased",
    schema: AuditTrailEventSchema,
    userIdOf: (message) => (message.event.case === "personalDataErased" ? message.event.value.userId : undefined),
  }),
  participant({
    name: "notifications",
    stream: "NOTIFICATIONS",
    subject: "notifications.v1.notification.sent",
    schema: NotificationEventSchema,
    // Only the farewell reports the closure; other notifications of the user do not.
    userIdOf: (message) => (message.event.case === "notificationSent" && message.event.value.kind === "farewell" ? message.event.value.userId : undefined),
  }),
];

/** One durable consumer per participant's stream, reading only its closure report. */
export function closureReportConsumers(record: RecordReport): ConsumerSpec<IdentityTables>[] {
  return CLOSURE_PARTICIPANTS.map((entry) => entry.consumer(record));
}
