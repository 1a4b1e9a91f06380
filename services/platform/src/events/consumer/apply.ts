import type { Kysely, Transaction } from "kysely";
import type { PlatformTables } from "../../db/database.ts";
import { preparedQuery } from "../../db/prepared.ts";
import { activeFaults } from "../../faults.ts";
import { traceIdOf, type EventEnvelope } from "../cloudevents.ts";
import type { ConsumerSpec } from "./spec.ts";

export type Outcome = "applied" | "duplicate";

/**
 * Records the event id for this consumer and runs its handler, both in `trx`: a seen id is a
 * duplicate and changes nothing, so live delivery, redelivery, replays and rebuilds all apply an
 * event at most once.
 */
export async function applyOnce<Tables>(
  spec: ConsumerSpec<Tables>,
  trx: Transaction<Tables & PlatformTables>,
  envelope: EventEnvelope,
  data: Uint8Array,
  streamSequence: number,
): Promise<Outcome> {
  const inserted = await recordEvent.execute(trx as unknown as Kysely<PlatformTables>, spec.name, envelope.id, Date.now());
  if (Number(inserted.numAffectedRows ?? 0n) === 0) return "duplicate";
  activeFaults().failIf("reject-event", envelope.id, `refusing event ${envelope.id}`);
  await spec.handle({ ...envelope, message: spec.decode(data), data, traceId: traceIdOf(envelope.traceparent), streamSequence }, trx);
  return "applied";
}

/** The inbox row, on the hot loop of every consumer: compiled once (db/prepared.ts). */
const recordEvent = preparedQuery((db: Kysely<PlatformTables>, consumer: string, eventId: string, processedAt: number) =>
  db
    .insertInto("processed_events")
    .values({ consumer, event_id: eventId, processed_at: processedAt })
    .onConflict((conflict) => conflict.doNothing()),
);
