import { create } from "@bufbuild/protobuf";
import { timestampMs, timestampNow } from "@bufbuild/protobuf/wkt";
import { defineConsumer, eventEmitter, type ReceivedEvent, type StreamSpec } from "@meshwork/platform";
import { UserEventSchema, type UserEvent } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { PresenceEvent_SessionsEndedSchema, PresenceEventSchema } from "@meshwork/proto/meshwork/presence/v1/events_pb.js";
import type { Transaction } from "kysely";
import { isLive } from "./domain/online.ts";
import { addSession, closeAccount, endSession, type PresenceDatabase, type PresenceTables } from "./store.ts";

/** presence publishes only its report in the account-closure choreography. */
export const PRESENCE_STREAM: StreamSpec = {
  name: "PRESENCE",
  subjects: ["presence.>"],
  duplicateWindowMs: 2 * 60_000,
};

export const presenceEvents = eventEmitter(PresenceEventSchema, {
  sessionsEnded: "presence.v1.user.sessions_ended",
});

/** presence keeps a projection of identity's sign-ins and sign-outs, and ends a closed account's sessions. */
export const PROJECTION_CONSUMER = "presence-projection";

export function presenceConsumers() {
  return [
    defineConsumer<PresenceTables, typeof UserEventSchema>({
      name: PROJECTION_CONSUMER,
      stream: "IDENTITY",
      filterSubjects: ["identity.v1.user.signed_in", "identity.v1.user.signed_out", "identity.v1.user.account_closure_requested"],
      schema: UserEventSchema,
      maxDeliver: 4,
      backoffMs: [100, 500, 2_000],
      handle: applyToProjection,
    }),
  ];
}

async function applyToProjection(event: ReceivedEvent<UserEvent>, trx: Transaction<PresenceDatabase>): Promise<void> {
  const { event: variant } = event.message;
  if (variant.case === "signedIn") {
    const signedIn = variant.value;
    const expiresAt = signedIn.expiresAt ? timestampMs(signedIn.expiresAt) : 0;
    // A replay of an old sign-in must not resurrect a session whose token has long expired.
    if (!isLive({ expiresAt }, Date.now())) return;
    await addSession(trx, {
      sessionId: signedIn.sessionId,
      userId: signedIn.userId,
      email: signedIn.email,
      displayName: signedIn.displayName,
      startedAt: signedIn.occurredAt ? timestampMs(signedIn.occurredAt) : event.time.getTime(),
      expiresAt,
    });
  } else if (variant.case === "signedOut") {
    await endSession(trx, variant.value.sessionId, variant.value.occurredAt ? timestampMs(variant.value.occurredAt) : event.time.getTime());
  } else if (variant.case === "accountClosureRequested") {
    const { userId } = variant.value;
    const ended = await closeAccount(trx, userId, Date.now());
    // Reported once: a rebuild replays the request, but the account is already closed here.
    if (ended === undefined) return;
    await presenceEvents.emit(trx, userId, { case: "sessionsEnded", value: create(PresenceEvent_SessionsEndedSchema, { userId, sessionsEnded: ended, occurredAt: timestampNow() }) });
  }
}
