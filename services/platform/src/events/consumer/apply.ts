import { type CompiledQuery, type Kysely, type Transaction } from "kysely";
import type { PlatformTables } from "../../db/database.ts";
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
  const inserted = await trx.executeQuery(inboxInsert(trx as unknown as Kysely<PlatformTables>, spec.name, envelope.id, Date.now()));
  if (Number(inserted.numAffectedRows ?? 0n) === 0) return "duplicate";
  activeFaults().failIf("reject-event", envelope.id, `refusing event ${envelope.id}`);
  await spec.handle({ ...envelope, message: spec.decode(data), data, traceId: traceIdOf(envelope.traceparent), streamSequence }, trx);
  return "applied";
}

const EVENT_ID = "\u0000event-id";
const PROCESSED_AT = -1;
/** The inbox insert as each database's compiler writes it, keyed by the Kysely adapter (one per dialect). */
const compiledInboxInserts = new WeakMap<object, CompiledQuery>();

/**
 * `insert into processed_events ... on conflict do nothing` for one event. Kysely builds and
 * compiles a query anew on every execution, which cost more than SQLite's own work for this short
 * statement on the consumer's hot loop (bench/pipeline.ts, docs/performance.md); the query is
 * compiled once per dialect and each event only binds its parameters.
 */
function inboxInsert(db: Kysely<PlatformTables>, consumer: string, eventId: string, processedAt: number): CompiledQuery {
  const adapter = db.getExecutor().adapter;
  let compiled = compiledInboxInserts.get(adapter);
  if (!compiled) {
    compiled = db
      .insertInto("processed_events")
      .values({ consumer: "", event_id: EVENT_ID, processed_at: PROCESSED_AT })
      .onConflict((conflict) => conflict.doNothing())
      .compile();
    // The three values must be the statement's only parameters, in the order given.
    if (compiled.parameters.length !== 3 || compiled.parameters[0] !== "" || compiled.parameters[1] !== EVENT_ID || compiled.parameters[2] !== PROCESSED_AT) {
      throw new Error(`unexpected inbox insert parameters: ${compiled.sql}`);
    }
    compiledInboxInserts.set(adapter, compiled);
  }
  return { ...compiled, parameters: [consumer, eventId, processedAt] };
}
