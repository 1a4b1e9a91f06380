import assert from "node:assert/strict";
import { context, trace, TraceFlags, type Span } from "@opentelemetry/api";
import { AlwaysOnSampler, ParentBasedSampler } from "@opentelemetry/sdk-trace";
import { sql, type Kysely } from "kysely";
import { openDatabase, type Database, type PlatformTables } from "../../src/db/database.ts";
import { preparedQuery } from "../../src/db/prepared.ts";
import { applyOnce } from "../../src/events/consumer/apply.ts";
import { applyBatch } from "../../src/events/consumer/batching.ts";
import { defineConsumer } from "../../src/events/consumer/spec.ts";
import { spanMayRecord, setSamplingPolicy } from "../../src/tracing-policy.ts";
import { finishedSpans, installTestTracing, spanExporter, useSampler } from "../support/tracing.ts";

interface Tables {
  seen: { event_id: string };
}

const exporter = spanExporter;

/** A parent span that is sampled or not, whatever the sampler says (as a remote parent would be). */
function parentSpan(sampled: boolean): Span {
  return trace.wrapSpanContext({
    traceId: "0af7651916cd43dd8448eb211c80319c",
    spanId: "b7ad6b7169203331",
    traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE,
    isRemote: true,
  });
}

describe("database spans", () => {
  let database: Database<Tables>;
  const db = () => database.db as unknown as Kysely<Tables & PlatformTables>;
  const statements = async () => (await finishedSpans()).map((span) => span.attributes["db.operation.name"]);
  const underParent = <T>(sampled: boolean, work: () => Promise<T>) => context.with(trace.setSpan(context.active(), parentSpan(sampled)), work);

  before(() => installTestTracing());
  after(() => setSamplingPolicy("independent"));
  beforeEach(async () => {
    database = await openDatabase<Tables>("sqlite::memory:", {
      "0001_seen": { up: async (schema: Kysely<unknown>) => void (await schema.schema.createTable("seen").addColumn("event_id", "text").execute()) },
    });
    exporter.reset();
  });
  afterEach(() => database.close());

  it("records a statement as a CLIENT span under a sampled parent, with its SQL text and no values", async () => {
    useSampler(new ParentBasedSampler({ root: new AlwaysOnSampler() }), "follow-parent");
    await underParent(true, () => db().insertInto("seen").values({ event_id: "secret-value" }).execute());
    const spans = await finishedSpans();
    assert.equal(spans.length, 1);
    const [span] = spans;
    assert.equal(span!.name, "INSERT meshwork");
    assert.equal(span!.parentSpanContext?.spanId, "b7ad6b7169203331");
    assert.equal(span!.attributes["db.system.name"], "sqlite");
    assert.match(String(span!.attributes["db.query.text"]), /^insert into "seen"/);
    assert.doesNotMatch(String(span!.attributes["db.query.text"]), /secret-value/);
  });

  it("records a prepared statement run on the idle connection, outside Kysely's executor, as it records any other", async () => {
    useSampler(new ParentBasedSampler({ root: new AlwaysOnSampler() }), "follow-parent");
    const seen = preparedQuery((db: Kysely<Tables>, id: string) => db.selectFrom("seen").select("event_id").where("event_id", "=", id));
    let executorUsed = 0;
    const executor = db().getExecutor();
    const provideConnection = executor.provideConnection.bind(executor);
    executor.provideConnection = (consumer) => (executorUsed++, provideConnection(consumer));
    await underParent(true, () => seen.execute(db() as unknown as Kysely<Tables>, "secret-value"));
    assert.equal(executorUsed, 0, "ran on the idle connection");
    const [span] = await finishedSpans();
    assert.equal(span?.name, "SELECT meshwork");
    assert.equal(span!.parentSpanContext?.spanId, "b7ad6b7169203331");
    assert.match(String(span!.attributes["db.query.text"]), /^select "event_id" from "seen" where "event_id" = \?$/);
    exporter.reset();
    await underParent(false, () => seen.execute(db() as unknown as Kysely<Tables>, "a"));
    assert.deepEqual(await statements(), [], "and none under an unsampled parent");
  });

  it("builds no span under an unsampled parent when the sampler follows the parent, and still runs the statement", async () => {
    useSampler(new ParentBasedSampler({ root: new AlwaysOnSampler() }), "follow-parent");
    const count = await underParent(false, async () => {
      await db().insertInto("seen").values({ event_id: "a" }).execute();
      return (await sql<{ n: number }>`select count(*) as n from seen`.execute(db())).rows[0]!.n;
    });
    assert.equal(count, 1);
    assert.deepEqual(await statements(), []);
    // A statement outside any span is the root of its own trace: the sampler decides, so it is traced.
    await db().insertInto("seen").values({ event_id: "b" }).execute();
    assert.deepEqual(await statements(), ["INSERT"]);
  });

  it("still traces under an unsampled parent when the sampler does not follow parents", async () => {
    useSampler(new AlwaysOnSampler(), "independent");
    await underParent(false, () => db().insertInto("seen").values({ event_id: "a" }).execute());
    assert.deepEqual(await statements(), ["INSERT"]);
  });

  it("leaves a consumer batch's savepoints out and traces its inbox and handler statements", async () => {
    useSampler(new ParentBasedSampler({ root: new AlwaysOnSampler() }), "follow-parent");
    const consumer = defineConsumer<Tables>({
      name: "test-consumer",
      stream: "TEST",
      filterSubjects: [],
      handle: async (event, trx) => void (await trx.insertInto("seen").values({ event_id: event.id }).execute()),
    });
    const envelope = (id: string) => ({ id, subject: "test.ok", type: "test.Event", source: "test", time: new Date(0) });
    await underParent(true, () => applyBatch(db(), ["a", "b"], (trx, id) => applyOnce(consumer, trx, envelope(id), new Uint8Array(), 1)));
    const texts = (await finishedSpans()).map((span) => String(span.attributes["db.query.text"]).split(" ").slice(0, 3).join(" "));
    assert.deepEqual(texts, ['insert into "processed_events"', 'insert into "seen"', 'insert into "processed_events"', 'insert into "seen"']);
  });
});

describe("which leaf spans may be recorded", () => {
  after(() => setSamplingPolicy("independent"));

  it("none when the process samples nothing, all when unsure, and as the parent is sampled when the sampler follows it", () => {
    setSamplingPolicy("never");
    assert.equal(spanMayRecord(parentSpan(true)), false);
    assert.equal(spanMayRecord(undefined), false);
    setSamplingPolicy("independent");
    assert.equal(spanMayRecord(parentSpan(false)), true);
    setSamplingPolicy("follow-parent");
    assert.equal(spanMayRecord(parentSpan(true)), true);
    assert.equal(spanMayRecord(parentSpan(false)), false);
    assert.equal(spanMayRecord(undefined), true, "a root span is the root sampler's decision");
    assert.equal(spanMayRecord(trace.wrapSpanContext({ traceId: "0".repeat(32), spanId: "0".repeat(16), traceFlags: 0 })), true, "an invalid parent counts as none");
  });
});
