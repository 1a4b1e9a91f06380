import { eventEmitter, type StreamSpec } from "@meshwork/platform";
import { UserEventSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";

/** identity publishes; it consumes nothing. One stream for the domain, one subject per variant. */
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
});
