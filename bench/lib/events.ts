import { randomBytes } from "node:crypto";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { toHeaders, uuidv7 } from "@meshwork/platform";
import { UserEvent_SignedInSchema, UserEventSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import type { MsgHdrs } from "@nats-io/transport-node";
import { userEvents } from "../../services/identity/src/events.ts";

export const SIGNED_IN_SUBJECT = userEvents.subjects.signedIn;

/** One identity.v1.user.signed_in event as identity would publish it: a fresh user and session, an hour to live. */
export function signedInEvent(): { data: Uint8Array; headers: MsgHdrs; id: string } {
  const now = Date.now();
  const userId = uuidv7(now);
  const message = create(UserEventSchema, {
    event: {
      case: "signedIn",
      value: create(UserEvent_SignedInSchema, {
        userId,
        email: `${userId}@meshwork.bench`,
        displayName: "bench user",
        sessionId: uuidv7(now),
        occurredAt: timestampFromMs(now),
        expiresAt: timestampFromMs(now + 3_600_000),
      }),
    },
  });
  const id = uuidv7(now);
  const headers = toHeaders({
    id,
    type: UserEventSchema.typeName,
    source: "meshwork/identity",
    subject: SIGNED_IN_SUBJECT,
    time: new Date(now),
    traceparent: `00-${randomBytes(16).toString("hex")}-${randomBytes(8).toString("hex")}-01`,
  });
  return { data: toBinary(UserEventSchema, message), headers, id };
}
