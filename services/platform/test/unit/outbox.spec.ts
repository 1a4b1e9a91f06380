import assert from "node:assert/strict";
import { timestampFromMs, TimestampSchema } from "@bufbuild/protobuf/wkt";
import type { MsgHdrs } from "@nats-io/transport-node";
import { openDatabase, type Database } from "../../src/db/database.ts";
import { enqueueEvent, OutboxRelay, type EventPublisher } from "../../src/events/outbox.ts";
import { createLogger } from "../../src/logger.ts";

/** Records what the relay publishes; fails the publishes it is told to, like JetStream being away. */
class RecordingPublisher implements EventPublisher {
  readonly published: { subject: string; id: string }[] = [];
  failures = 0;
  /** While set, every publish waits for it (a PubAck that takes its time). */
  hold: Promise<void> | undefined;
  publishing = 0;

  async publish(subject: string, payload: Uint8Array, options: { msgID: string; headers: MsgHdrs }) {
    this.publishing++;
    await this.hold;
    this.publishing--;
    if (this.failures > 0) {
      this.failures--;
      throw new Error("503 no responders");
    }
    assert.equal(options.headers.get("ce-id"), options.msgID, "the event id is also the de-duplication id");
    assert.ok(payload.byteLength > 0, "the body is the protobuf message");
    this.published.push({ subject, id: options.msgID });
    return { stream: "TEST", duplicate: false };
  }
}

describe("the outbox relay", () => {
  let database: Database<unknown>;
  let relay: OutboxRelay | undefined;
  const log = createLogger({ service: "outbox-test", level: "silent", format: "json" });
  const publisher = new RecordingPublisher();

  beforeEach(async () => {
    publisher.published.length = 0;
    publisher.failures = 0;
    publisher.hold = undefined;
    database = await openDatabase<unknown>("sqlite::memory:", {});
  });
  afterEach(async () => {
    await relay?.stop();
    relay = undefined;
    await database.close();
  });

  const enqueue = (subject: string, aggregateId: string, seconds: number) =>
    database.db.transaction().execute((trx) => enqueueEvent(trx, { subject, schema: TimestampSchema, message: timestampFromMs((seconds + 1) * 1000), aggregateId }));
  const start = () => {
    relay = new OutboxRelay({ db: database.db, isPostgres: false, publisher, source: "meshwork/test", log, idlePollMs: 10, maxBackoffMs: 20 });
    relay.start();
  };
  const until = async (condition: () => boolean) => {
    for (let waited = 0; !condition(); waited += 5) {
      assert.ok(waited < 5_000, "timed out");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  };

  it("publishes events in commit order, across aggregates, and marks each published", async () => {
    const ids = [];
    for (let index = 0; index < 30; index++) ids.push(await enqueue(`test.e${index}`, `aggregate-${index % 3}`, index));
    start();
    await until(() => publisher.published.length === 30);
    assert.deepEqual(publisher.published.map((event) => event.id), ids);
    assert.deepEqual(await relay!.backlog(), { count: 0, oldestAgeSeconds: 0 });
  });

  it("keeps the order through failed publishes: nothing after a failing event goes out before it", async () => {
    const ids = [];
    for (let index = 0; index < 5; index++) ids.push(await enqueue("test.ordered", "one-aggregate", index));
    publisher.failures = 3;
    start();
    await until(() => publisher.published.length === 5);
    assert.deepEqual(publisher.published.map((event) => event.id), ids, "each retried in place, none skipped or doubled");
  });

  it("leaves unpublished events in the outbox while publishing fails, and sends them once it works", async () => {
    publisher.failures = Number.POSITIVE_INFINITY;
    await enqueue("test.waiting", "a", 1);
    start();
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await relay!.backlog()).count, 1);
    publisher.failures = 0;
    relay!.nudge();
    await until(() => publisher.published.length === 1);
    assert.equal((await relay!.backlog()).count, 0);
  });

  it("wakes on a nudge after its short delay, once the nudging call's own work is done, not at its next poll", async () => {
    relay = new OutboxRelay({ db: database.db, isPostgres: false, publisher, source: "meshwork/test", log, idlePollMs: 60_000, nudgeDelayMs: 20 });
    relay.start();
    await new Promise((resolve) => setTimeout(resolve, 30));
    const id = await enqueue("test.nudged", "a", 1);
    const nudgedAt = performance.now();
    relay.nudge();
    relay.nudge();
    // The nudging caller's own continuations (its reply) run before the relay queries anything.
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(publisher.published.length, 0);
    await until(() => publisher.published.length === 1);
    assert.ok(performance.now() - nudgedAt >= 19, "not before the delay");
    assert.equal(publisher.published[0]!.id, id, "published long before the 60 s poll");
  });

  it("publishes an event committed while a publish is in flight right after it, not at the next poll", async () => {
    relay = new OutboxRelay({ db: database.db, isPostgres: false, publisher, source: "meshwork/test", log, idlePollMs: 60_000, nudgeDelayMs: 0 });
    relay.start();
    await new Promise((resolve) => setTimeout(resolve, 30));
    let release!: () => void;
    publisher.hold = new Promise((resolve) => (release = resolve));
    const first = await enqueue("test.first", "a", 1);
    relay.nudge();
    await until(() => publisher.publishing === 1);
    // Committed after the relay read its batch, nudged while it waits for the PubAck.
    const second = await enqueue("test.second", "b", 2);
    relay.nudge();
    await new Promise((resolve) => setTimeout(resolve, 20));
    release();
    await until(() => publisher.published.length === 2);
    assert.deepEqual(publisher.published.map((event) => event.id), [first, second]);
  });

  it("publishes an event committed while it idles as soon as it is nudged", async () => {
    start();
    await new Promise((resolve) => setTimeout(resolve, 30));
    const id = await enqueue("test.nudged", "a", 1);
    relay!.nudge();
    await until(() => publisher.published.length === 1);
    assert.equal(publisher.published[0]!.id, id);
  });
});
