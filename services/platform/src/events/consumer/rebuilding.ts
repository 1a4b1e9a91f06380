import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import type { Kysely, Transaction } from "kysely";
import type { PlatformTables } from "../../db/database.ts";
import type { Logger } from "../../logger.ts";
import { fromHeaders } from "../cloudevents.ts";
import { applyOnce } from "./apply.ts";
import type { ConsumerSpec } from "./spec.ts";

/**
 * Drops a consumer's projection (via `reset`, in the same transaction as forgetting the handled
 * event ids) and replays the stream into it from the first message. The same handler applies each
 * event, so the result is what live consumption would have built. The caller pauses live delivery.
 */
export async function rebuildProjection<Tables>(
  spec: ConsumerSpec<Tables>,
  db: Kysely<Tables & PlatformTables>,
  connection: NatsConnection,
  log: Logger,
  reset: (trx: Transaction<Tables & PlatformTables>) => Promise<void>,
): Promise<number> {
  await db.transaction().execute(async (trx) => {
    await reset(trx);
    await (trx as unknown as Transaction<PlatformTables>).deleteFrom("processed_events").where("consumer", "=", spec.name).execute();
  });
  const jsm = await jetstreamManager(connection);
  const { state } = await jsm.streams.info(spec.stream);
  if (state.messages === 0) return 0;
  const replay = await jetstream(connection).consumers.get(spec.stream, spec.filterSubjects.length > 0 ? { filter_subjects: spec.filterSubjects } : {});
  let applied = 0;
  let done = false;
  while (!done) {
    const batch = await replay.fetch({ max_messages: 500, expires: 2_000 });
    let received = 0;
    for await (const msg of batch) {
      received++;
      try {
        const outcome = await db.transaction().execute((trx) => applyOnce(spec, trx, fromHeaders(msg.headers, msg.subject), msg.data, msg.seq));
        if (outcome === "applied") applied++;
      } catch (error) {
        log.warn({ err: (error as Error).message, seq: msg.seq }, "rebuild skipped an event its handler refused");
      }
      if (msg.seq >= state.last_seq || msg.info.pending === 0) done = true;
    }
    if (received === 0) done = true;
  }
  log.info({ applied }, "projection rebuilt from the stream");
  return applied;
}
