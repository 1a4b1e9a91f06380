import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { jetstream } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { toHeaders, uuidv7 } from "@meshwork/platform";
import { UserEventSchema, type UserEvent } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { userEvents } from "../../services/identity/src/events.ts";

/** Publishes identity events straight to JetStream, as identity's relay would, for consumer tests. */
export async function publishUserEvent(connection: NatsConnection, event: UserEvent["event"], traceId = randomHex(32), id = uuidv7()): Promise<string> {
  const subject = userEvents.subjects[event.case!];
  const headers = toHeaders({
    id,
    type: UserEventSchema.typeName,
    source: "meshwork/test",
    subject,
    time: new Date(),
    traceparent: `00-${traceId}-${randomHex(16)}-01`,
  });
  await jetstream(connection).publish(subject, toBinary(UserEventSchema, create(UserEventSchema, { event })), { msgID: id, headers });
  return id;
}

export function signedIn(userId: string, sessionId: string, ttlMs = 3_600_000): UserEvent["event"] {
  return {
    case: "signedIn",
    value: {
      $typeName: "meshwork.identity.v1.UserEvent.SignedIn",
      userId,
      email: `${userId}@example.com`,
      displayName: `User ${userId}`,
      sessionId,
      occurredAt: timestampFromMs(Date.now()),
      expiresAt: timestampFromMs(Date.now() + ttlMs),
    },
  };
}

export function signedOut(userId: string, sessionId: string): UserEvent["event"] {
  return {
    case: "signedOut",
    value: { $typeName: "meshwork.identity.v1.UserEvent.SignedOut", userId, email: `${userId}@example.com`, sessionId, occurredAt: timestampFromMs(Date.now()) },
  };
}

function randomHex(length: number): string {
  return [...crypto.getRandomValues(new Uint8Array(length / 2))].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
