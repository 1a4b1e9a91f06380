import assert from "node:assert/strict";
import { sql, type Kysely } from "kysely";
import { openDatabase, type Database, type PlatformTables } from "../../src/db/database.ts";
import { applyOnce } from "../../src/events/consumer/apply.ts";
import { applyBatch, batchesOf } from "../../src/events/consumer/batching.ts";
import { defineConsumer, type RawEvent } from "../../src/events/consumer/spec.ts";

interface Tables {
  seen: { event_id: string };
}

/** An async source whose items arrive when the test pushes them, like a JetStream consumer. */
class Source<T> implements AsyncIterable<T> {
  private readonly buffered: T[] = [];
  private waiting: ((result: IteratorResult<T>) => void) | undefined;
  private ended = false;

  push(...items: T[]): void {
    for (const item of items) {
      if (this.waiting) {
        const deliver = this.waiting;
        this.waiting = undefined;
        deliver({ value: item, done: false });
      } else {
        this.buffered.push(item);
      }
    }
  }

  end(): void {
    this.ended = true;
    this.waiting?.({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return {
      next: () => {
        const item = this.buffered.shift();
        if (item !== undefined) return Promise.resolve({ value: item, done: false });
        if (this.ended) return Promise.resolve({ value: undefined, done: true });
        return new Promise((resolve) => (this.waiting = resolve));
      },
    };
  }
}

describe("consumer batching", () => {
  it("puts what has already arrived into one batch and closes it without waiting for more", async () => {
    const source = new Source<number>();
    source.push(1, 2, 3);
    const batches = batchesOf(source, 100);
    assert.deepEqual((await batches.next()).value, [1, 2, 3]);
    const later = batches.next();
    setTimeout(() => source.push(4), 20);
    assert.deepEqual((await later).value, [4]);
  });

  it("caps a batch at its maximum and carries the rest into the next", async () => {
    const source = new Source<number>();
    source.push(...Array.from({ length: 7 }, (_, index) => index));
    source.end();
    const seen: number[][] = [];
    for await (const batch of batchesOf(source, 3)) seen.push(batch);
    assert.deepEqual(seen, [[0, 1, 2], [3, 4, 5], [6]]);
  });

  it("loses no item that arrives while a batch is being applied", async () => {
    const source = new Source<number>();
    source.push(1);
    const seen: number[] = [];
    const consuming = (async () => {
      for await (const batch of batchesOf(source, 100)) {
        seen.push(...batch);
        // While this batch is "applied", more arrive; a pending next() must keep them.
        if (batch.includes(1)) {
          source.push(2);
          await new Promise((resolve) => setTimeout(resolve, 10));
          source.push(3);
        }
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 50));
    source.end();
    await consuming;
    assert.deepEqual(seen, [1, 2, 3]);
  });
});

describe("applying a batch", () => {
  let database: Database<Tables>;
  const db = () => database.db as unknown as Kysely<Tables & PlatformTables>;
  const handled: string[] = [];
  const consumer = defineConsumer<Tables>({
    name: "test-consumer",
    stream: "TEST",
    filterSubjects: [],
    async handle(event: RawEvent, trx) {
      handled.push(event.id);
      await trx.insertInto("seen").values({ event_id: event.id }).execute();
      if (event.subject === "test.poison") throw new Error(`refusing ${event.id}`);
    },
  });
  const envelope = (id: string, subject = "test.ok") => ({ id, subject, type: "test.Event", source: "test", time: new Date(0) });
  const applyAll = (events: { id: string; subject?: string }[]) =>
    applyBatch(db(), events, (trx, event) => applyOnce(consumer, trx, envelope(event.id, event.subject), new Uint8Array(), 1));
  const rows = async (table: "seen" | "processed_events") =>
    (await sql<{ id: string }>`select event_id as id from ${sql.table(table)} order by 1`.execute(db())).rows.map((row) => row.id);

  beforeEach(async () => {
    handled.length = 0;
    database = await openDatabase<Tables>("sqlite::memory:", {
      "0001_seen": { up: async (schema: Kysely<unknown>) => void (await schema.schema.createTable("seen").addColumn("event_id", "text").execute()) },
    });
  });
  afterEach(() => database.close());

  it("commits every event of a batch together and reports each as applied", async () => {
    const results = await applyAll([{ id: "a" }, { id: "b" }, { id: "c" }]);
    assert.deepEqual(results.map((result) => result.outcome), ["applied", "applied", "applied"]);
    assert.deepEqual(await rows("seen"), ["a", "b", "c"]);
    assert.deepEqual(await rows("processed_events"), ["a", "b", "c"]);
  });

  it("rolls back a failing event to its savepoint alone: its writes and its handled mark are gone, the others commit", async () => {
    const results = await applyAll([{ id: "a" }, { id: "bad", subject: "test.poison" }, { id: "c" }]);
    assert.deepEqual(results.map((result) => result.outcome ?? result.error?.message), ["applied", "refusing bad", "applied"]);
    assert.deepEqual(await rows("seen"), ["a", "c"], "the failing handler's insert was rolled back");
    assert.deepEqual(await rows("processed_events"), ["a", "c"], "so a retry of it is not taken for a duplicate");
  });

  it("applies a batch with a failing event again under savepoints, after rolling back the first pass whole", async () => {
    const results = await applyAll([{ id: "a" }, { id: "bad", subject: "test.poison" }, { id: "c" }]);
    assert.deepEqual(results.map((result) => result.outcome ?? result.error?.message), ["applied", "refusing bad", "applied"]);
    // The first pass stops at the failure; the second applies each event under its own savepoint.
    assert.deepEqual(handled, ["a", "bad", "a", "bad", "c"]);
    assert.deepEqual(await rows("seen"), ["a", "c"], "each event's write once: the first pass left nothing behind");
  });

  it("applies an event that fails only in the first pass once, in the second", async () => {
    let failuresLeft = 1;
    const flaky = defineConsumer<Tables>({
      name: "test-consumer",
      stream: "TEST",
      filterSubjects: [],
      async handle(event: RawEvent, trx) {
        handled.push(event.id);
        await trx.insertInto("seen").values({ event_id: event.id }).execute();
        if (event.id === "flaky" && failuresLeft-- > 0) throw new Error("not yet");
      },
    });
    const results = await applyBatch(db(), ["a", "flaky", "c"], (trx, id) => applyOnce(flaky, trx, envelope(id), new Uint8Array(), 1));
    assert.deepEqual(results.map((result) => result.outcome ?? result.error?.message), ["applied", "applied", "applied"]);
    assert.deepEqual(handled, ["a", "flaky", "a", "flaky", "c"]);
    assert.deepEqual(await rows("seen"), ["a", "c", "flaky"]);
    assert.deepEqual(await rows("processed_events"), ["a", "c", "flaky"]);
  });

  it("applies an event id once: a redelivery, in a later batch or the same one, is a duplicate and skips the handler", async () => {
    await applyAll([{ id: "a" }]);
    const results = await applyAll([{ id: "a" }, { id: "b" }, { id: "b" }]);
    assert.deepEqual(results.map((result) => result.outcome), ["duplicate", "applied", "duplicate"]);
    assert.deepEqual(handled, ["a", "b"]);
    assert.deepEqual(await rows("seen"), ["a", "b"]);
  });
});
