import { defineConsumer, type RawEvent } from "@meshwork/platform";
import type { Transaction } from "kysely";
import { userIdOf } from "./domain/redaction.ts";
import { decodePayload } from "./payloads.ts";
import { storeEvent, type AuditDatabase, type AuditTables } from "./store.ts";

/** audit publishes nothing; one durable consumer per stream keeps every event as received. */
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
  await storeEvent(trx, {
    id: event.id,
    type: event.type,
    subject: event.subject,
    source: event.source,
    time: event.time.getTime(),
    trace_id: event.traceId,
    user_id: userIdOf(decodePayload(event.type, event.data)),
    stream,
    stream_sequence: event.streamSequence,
    payload: Buffer.from(event.data).toString("base64"),
    received_at: Date.now(),
  });
}
