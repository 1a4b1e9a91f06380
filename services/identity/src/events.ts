import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { enqueueEvent, type PlatformTables, type StreamSpec } from "@meshwork/platform";
import { UserEventSchema, type UserEvent } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import type { Transaction } from "kysely";

/** identity publishes; it consumes nothing. One stream for the domain, one subject per variant. */
export const IDENTITY_STREAM: StreamSpec = {
  name: "IDENTITY",
  subjects: ["identity.>"],
  duplicateWindowMs: 2 * 60_000,
};

export const subjects = {
  signedUp: "identity.v1.user.signed_up",
  signedIn: "identity.v1.user.signed_in",
  signedOut: "identity.v1.user.signed_out",
  rolesChanged: "identity.v1.user.roles_changed",
} as const;

type Variant = NonNullable<UserEvent["event"]["case"]>;

const subjectOf: Record<Variant, string> = {
  signedUp: subjects.signedUp,
  signedIn: subjects.signedIn,
  signedOut: subjects.signedOut,
  rolesChanged: subjects.rolesChanged,
};

/** Enqueues a UserEvent in the caller's transaction (the outbox); the relay publishes it after commit. */
export function emitUserEvent<T extends PlatformTables>(trx: Transaction<T>, userId: string, event: UserEvent["event"]): Promise<string> {
  if (!event.case) throw new Error("a UserEvent needs a variant");
  return enqueueEvent(trx, {
    subject: subjectOf[event.case],
    schema: UserEventSchema,
    message: create(UserEventSchema, { event }),
    aggregateId: userId,
  });
}

export const now = () => timestampFromMs(Date.now());
