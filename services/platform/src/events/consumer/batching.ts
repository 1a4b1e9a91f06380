import { CompiledQuery, type Kysely, type Transaction } from "kysely";
import { untraced } from "../../db/traced-dialect.ts";
import type { PlatformTables } from "../../db/database.ts";
import type { Outcome } from "./apply.ts";

/** Events applied in one transaction at most; bounds how much one failed commit sends back. */
export const MAX_BATCH = 100;

/**
 * Groups what has already arrived (up to `max`) into one batch, without waiting for more: a batch
 * closes as soon as nothing else is buffered. Used by the live consumer so that a burst costs one
 * commit per batch instead of one per event.
 */
export async function* batchesOf<T>(source: AsyncIterable<T>, max = MAX_BATCH): AsyncGenerator<T[]> {
  const iterator = source[Symbol.asyncIterator]();
  // A next() that did not settle before the batch closed is kept for the following batch: an
  // async iterator's next() cannot be taken back, and its message must not be dropped.
  let waiting: Promise<IteratorResult<T>> | undefined;
  for (;;) {
    const first = await (waiting ?? iterator.next());
    waiting = undefined;
    if (first.done) return;
    const batch = [first.value];
    let done = false;
    // Messages already buffered settle within microtasks; setImmediate runs after them, so it
    // wins only when nothing more has arrived yet, and the batch closes without waiting. One
    // check per batch: once it has run, the next message that is not already settled closes it.
    const nothingMore = new Promise<"none yet">((resolve) => setImmediate(resolve, "none yet"));
    while (batch.length < max) {
      waiting = iterator.next();
      const next = await Promise.race([waiting, nothingMore]);
      if (next === "none yet") break;
      waiting = undefined;
      if (next.done) {
        done = true;
        break;
      }
      batch.push(next.value);
    }
    yield batch;
    if (done) return;
  }
}

export interface BatchResult<M> {
  msg: M;
  outcome?: Outcome;
  error?: Error;
}

/**
 * Applies a batch in one transaction. A failing message rolls back alone (and is retried or
 * dead-lettered alone) while the others commit together. Rejects when the batch itself fails (the
 * commit, the connection): then nothing was applied.
 *
 * Messages almost never fail, so the batch is first applied without a savepoint per message (two
 * statements less per event). Only when a message fails is that transaction rolled back whole and
 * the batch applied again one message at a time under savepoints (the isolated pass): what the first
 * pass did is gone, so nothing is applied twice, and the outcome is the one the savepoints give.
 */
export async function applyBatch<Tables, M>(
  db: Kysely<Tables & PlatformTables>,
  batch: readonly M[],
  apply: (trx: Transaction<Tables & PlatformTables>, msg: M) => Promise<Outcome>,
): Promise<BatchResult<M>[]> {
  return (await applyInTransaction(db, batch, apply, false)) ?? (await applyInTransaction(db, batch, apply, true))!;
}

/**
 * The batch in one transaction. `isolated`: each message under its own savepoint, so a failing one
 * rolls back alone. Otherwise the first failing message rolls the whole transaction back and the
 * answer is undefined (which message failed, and why, is what the isolated pass reports).
 */
async function applyInTransaction<Tables, M>(
  db: Kysely<Tables & PlatformTables>,
  batch: readonly M[],
  apply: (trx: Transaction<Tables & PlatformTables>, msg: M) => Promise<Outcome>,
  isolated: boolean,
): Promise<BatchResult<M>[] | undefined> {
  const results: BatchResult<M>[] = new Array(batch.length);
  const trx = await db.startTransaction().execute();
  try {
    for (let i = 0; i < batch.length; i++) {
      const msg = batch[i]!;
      if (isolated) await trx.executeQuery(SAVEPOINT);
      try {
        const outcome = await apply(trx, msg);
        if (isolated) await trx.executeQuery(RELEASE);
        results[i] = { msg, outcome };
      } catch (error) {
        if (!isolated) {
          await trx.rollback().execute();
          return undefined;
        }
        await trx.executeQuery(ROLLBACK_TO);
        await trx.executeQuery(RELEASE);
        results[i] = { msg, error: error instanceof Error ? error : new Error(String(error)) };
      }
    }
    await trx.commit().execute();
  } catch (error) {
    await trx.rollback().execute().catch(() => undefined);
    throw error;
  }
  return results;
}

// The savepoint commands as constant statements on the batch's own transaction: Kysely's
// `trx.savepoint()` builds a transaction object and compiles its command for every event.
const SAVEPOINT = untraced(CompiledQuery.raw('savepoint "event"'));
const RELEASE = untraced(CompiledQuery.raw('release savepoint "event"'));
const ROLLBACK_TO = untraced(CompiledQuery.raw('rollback to savepoint "event"'));
