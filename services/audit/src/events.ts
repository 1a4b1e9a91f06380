import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { defineConsumer, eventEmitter, type RawEvent, type StreamSpec } from "@meshwork/platform";
import { AuditTrailEvent_PersonalDataErasedSchema, AuditTrailEventSchema } from "@meshwork/proto/meshwork/audit/v1/events_pb.js";
import { UserEventSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import type { Transaction } from "kysely";
import { userIdOf } from "./domain/redaction.ts";
import { decodePayload, erasePersonalData } from "./payloads.ts";
import { eraseUser, isErased, storeEvent, type AuditDatabase, type AuditTables, type StoredEvent } from "./store.ts";

/** audit publishes only its report in the account-closure choreography. */
export const AUDIT_STREAM: StreamSpec = {
  name: "AUDIT",
  subjects: ["audit.>"],
  duplicateWindowMs: 2 * 60_000,
};

export const auditTrailEvents = eventEmitter(AuditTrailEventSchema, {
  personalDataErased: "audit.v1.user.personal_data_erased",
});

/** Whether a kept event is identity's request to close an account (a UserEvent's variant, as JSON). */
function isClosureRequest(type: string, decoded: unknown): boolean {
  return type === UserEventSchema.typeName && typeof decoded === "object" && decoded !== null && "accountClosureRequested" in decoded;
}

/** One durable consumer per stream keeps every event as received (a closed account's, erased). */
export function auditConsumers(streams: string[]) {
  return streams.map((stream) =>
    defineConsumer<AuditTables>({
      name: `audit-${stream.toLowerCase()}`,
      stream,
      filterSubjects: [],
      maxDeliver: 10,
      backoffMs: [200, 1_000, 5_000, 15_000],
      handle: (event, trx) => keep(stream, event, trx),
    }),
  );
}

async function keep(stream: string, event: RawEvent, trx: Transaction<AuditDatabase>): Promise<void> {
  const decoded = decodePayload(event.type, event.data);
  const userId = userIdOf(decoded);
  const erased = userId !== "" && (await isErased(trx, userId));
  await storeEvent(trx, {
    id: event.id,
    type: event.type,
    subject: event.subject,
    source: event.source,
    time: event.time.getTime(),
    trace_id: event.traceId,
    user_id: userId,
    stream,
    stream_sequence: event.streamSequence,
    payload: Buffer.from(erased ? erasePersonalData(event.type, event.data) : event.data).toString("base64"),
    received_at: Date.now(),
  });
  if (userId && isClosureRequest(event.type, decoded)) await erase(trx, userId);
}

/** audit's part of the account-closure choreography: tombstones for everything kept about the user, then its report. */
async function erase(trx: Transaction<AuditDatabase>, userId: string): Promise<void> {
  const tombstone = (event: StoredEvent) => Buffer.from(erasePersonalData(event.type, Buffer.from(event.payload, "base64"))).toString("base64");
  const erased = await eraseUser(trx, userId, Date.now(), tombstone);
  if (erased === undefined) return;
  await auditTrailEvents.emit(trx, userId, {
    case: "personalDataErased",
    value: create(AuditTrailEvent_PersonalDataErasedSchema, { userId, eventsErased: erased, occurredAt: timestampNow() }),
  });
}
