/**
 * The consumer's hot loop in one process, without NATS: presence's projection consumer applies
 * synthetic sign-in events through the platform's ConsumerRunner (batch transaction, savepoint,
 * inbox row, CONSUMER span, decode, handler, ack) on a SQLite file, as the service does. Used to
 * find where the per-event time goes (docs/performance.md) without the noise of a whole system.
 *
 *   node bench/workers/consumer-loop.ts cpu [batch size] [batches]   CPU µs per event, 8 passes
 *   node bench/workers/consumer-loop.ts tail [events]                one event per batch: p50/p99/max
 *   node bench/workers/consumer-loop.ts paced [events] [per second]   events arriving at a steady rate,
 *     applied in batches of what has arrived (as the live consumer does): p50/p99/max from arrival
 *   node bench/workers/consumer-loop.ts checkpoint [events] [rounds] one event per batch with SQLite's
 *     automatic checkpoint off, then one PASSIVE checkpoint timed on its own: WAL frames per event
 *     and what a checkpoint of that many events costs the thread that runs it
 *
 * Environment: SQLITE_PRAGMAS="wal_autocheckpoint=0;synchronous=OFF" runs pragmas on the database
 * first (to weigh the WAL checkpoint); add --cpu-prof to profile.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { JsMsg } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { sql } from "kysely";
import { startTelemetry } from "../../services/platform/src/telemetry.ts";

// As in the service: telemetry first (no exporter, so nothing is sampled), then everything else.
await startTelemetry({ serviceName: "presence", serviceVersion: "bench", environment: "bench" });
const { ConsumerRunner, createLogger, openDatabase } = await import("@meshwork/platform");
const { MAX_BATCH } = await import("../../services/platform/src/events/consumer/batching.ts");
const { SIGNED_IN_SUBJECT, signedInEvent } = await import("../lib/events.ts");
const { presenceConsumers } = await import("../../services/presence/src/events.ts");
const { migrations } = await import("../../services/presence/src/store.ts");
type PresenceTables = import("../../services/presence/src/store.ts").PresenceTables;

const [mode = "cpu", first, second] = process.argv.slice(2);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "consumer-loop-"));
const database = await openDatabase<PresenceTables>(path.join(dir, "presence.db"), migrations);
for (const pragma of (process.env["SQLITE_PRAGMAS"] ?? "").split(";").filter(Boolean)) await sql.raw(`pragma ${pragma}`).execute(database.db);
// The runner never touches NATS on the applying path: acks go to the fake messages below.
const runner = new ConsumerRunner(presenceConsumers()[0]!, database.db, {} as NatsConnection, createLogger({ service: "presence", level: "warn", format: "json" }));
const applyBatch = (batch: JsMsg[]) => (runner as unknown as { processBatch(batch: JsMsg[]): Promise<void> }).processBatch(batch);

let sequence = 0;
let acked = 0;
/** What JetStream would deliver for one identity.v1.user.signed_in event (the fields the runner reads). */
function signedIn(): JsMsg {
  const { data, headers } = signedInEvent();
  const msg = { subject: SIGNED_IN_SUBJECT, data, headers, seq: ++sequence, info: { deliveryCount: 1 }, ack: () => void acked++ };
  return msg as unknown as JsMsg;
}

if (mode === "cpu") {
  const batchSize = Number(first ?? 20);
  const batches = Number(second ?? 300);
  for (let pass = 1; pass <= 8; pass++) {
    const work = Array.from({ length: batches }, () => Array.from({ length: batchSize }, signedIn));
    const started = process.cpuUsage();
    for (const batch of work) await applyBatch(batch);
    const used = process.cpuUsage(started);
    console.log(`pass ${pass}: batches of ${batchSize}: ${((used.user + used.system) / (batches * batchSize)).toFixed(1)} µs CPU per event`);
  }
} else if (mode === "tail") {
  const events = Number(first ?? 4_000);
  const times: number[] = [];
  for (let i = 0; i < events; i++) {
    const msg = signedIn();
    const started = performance.now();
    await applyBatch([msg]);
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.floor(q * (times.length - 1))]!.toFixed(2);
  console.log(`one event per batch, ${events} events: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, p99.9 ${at(0.999)} ms, max ${at(1)} ms`);
} else if (mode === "paced") {
  const events = Number(first ?? 3_000);
  const perSecond = Number(second ?? 1_000);
  const latencies: number[] = [];
  const started = performance.now();
  const dueAt = (i: number) => started + (i * 1000) / perSecond;
  let next = 0;
  while (next < events) {
    const now = performance.now();
    let arrived = next;
    while (arrived < events && arrived - next < MAX_BATCH && dueAt(arrived) <= now) arrived++;
    if (arrived === next) {
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    await applyBatch(Array.from({ length: arrived - next }, signedIn));
    const done = performance.now();
    for (let i = next; i < arrived; i++) latencies.push(done - dueAt(i));
    next = arrived;
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.floor(q * (latencies.length - 1))]!.toFixed(2);
  console.log(`${events} events at ${perSecond}/s: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, p99.9 ${at(0.999)} ms, max ${at(1)} ms`);
} else if (mode === "checkpoint") {
  const events = Number(first ?? 200);
  const rounds = Number(second ?? 20);
  const sqlite = database.db;
  await sql.raw("pragma wal_autocheckpoint = 0").execute(sqlite);
  await sql.raw("pragma wal_checkpoint(TRUNCATE)").execute(sqlite);
  const times: number[] = [];
  let frames = 0;
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < events; i++) await applyBatch([signedIn()]);
    const started = performance.now();
    const { rows } = await sql.raw<{ busy: number; log: number; checkpointed: number }>("pragma wal_checkpoint(PASSIVE)").execute(sqlite);
    times.push(performance.now() - started);
    frames += rows[0]!.log;
    // The next commit restarts the WAL from its beginning (everything is checkpointed), as it does after an automatic checkpoint.
  }
  times.sort((a, b) => a - b);
  const at = (q: number) => times[Math.floor(q * (times.length - 1))]!.toFixed(2);
  console.log(`${(frames / (events * rounds)).toFixed(1)} WAL frames per event; a PASSIVE checkpoint of ${events} events (${(frames / rounds).toFixed(0)} frames): min ${at(0)} ms, p50 ${at(0.5)} ms, max ${at(1)} ms`);
} else {
  throw new Error(`unknown mode ${mode}: cpu, tail or checkpoint`);
}
if (acked === 0) throw new Error("nothing was acknowledged");
await database.close();
fs.rmSync(dir, { recursive: true, force: true });
