import { create } from "@bufbuild/protobuf";
import { enqueueEvent, type PlatformTables, type StreamSpec } from "@meshwork/platform";
import { UserEventSchema, type UserEvent } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import type { Transaction } from "kysely";

/** identity publishes; it consumes nothing. One stream for the domain, one subject per variant. */
export const IDENTITY_STREAM: StreamSpec = {
  name: "IDENTITY",
  subjects: ["identity.>"],
  duplicateWindowMs: 2 * 60_000,
};

/** The subject of each UserEvent variant, keyed by the variant's oneof case. */
export const subjects = {
  signedUp: "identity.v1.user.signed_up",
  signedIn: "identity.v1.user.signed_in",
  signedOut: "identity.v1.user.signed_out",
  rolesChanged: "identity.v1.user.roles_changed",
} as const satisfies Record<NonNullable<UserEvent["event"]["case"]>, string>;

/** Enqueues a UserEvent in the caller's transaction (the outbox); the relay publishes it after commit. */
export function emitUserEvent<T extends PlatformTables>(trx: Transaction<T>, userId: string, event: UserEvent["event"]): Promise<string> {
  if (!event.case) throw new Error("a UserEvent needs a variant");
  return enqueueEvent(trx, {
    subject: subjects[event.case],
    schema: UserEventSchema,
    message: create(UserEventSchema, { event }),
    aggregateId: userId,
  });
}
