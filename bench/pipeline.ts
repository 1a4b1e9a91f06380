import path from "node:path";
import { jetstream, jetstreamManager, type JetStreamClient } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import { ensureStreams, type StreamSpec } from "@meshwork/platform";
import { setTimeout as sleep } from "node:timers/promises";
import { IDENTITY_STREAM } from "../services/identity/src/events.ts";
import { PROJECTION_CONSUMER } from "../services/presence/src/events.ts";
import { spawnManaged, waitFor, type ManagedProcess } from "../scripts/lib/system.ts";
import { profileEnv, type Benchmark } from "./lib/context.ts";
import { SIGNED_IN_SUBJECT, signedInEvent } from "./lib/events.ts";
import { metric } from "./lib/report.ts";
import { percentiles } from "./lib/stats.ts";
import { BenchSystem, cpuTimeMsOf } from "./lib/system.ts";

/** The baseline's stream: IDENTITY's settings under another name, so both live on one server. */
const RAW_STREAM: StreamSpec = { ...IDENTITY_STREAM, name: "BENCHRAW", subjects: ["benchraw.>"] };
const RAW_SUBJECT = "benchraw.v1.user.signed_in";
const RAW_CONSUMER = "bench-raw";
/** The Moleculer peer's channel: it creates this stream itself, with IDENTITY's settings. */
const MOLECULER_STREAM = "BENCHMOL";
const MOLECULER_SUBJECT = "benchmol.v1.user.signed_in";
const MOLECULER_GROUP = "bench-moleculer";
const RATE = 1_000;
/** In-flight publishes in the throughput phase (a fast producer, like a relay draining a backlog). */
const WINDOW = 256;

interface Target {
  label: string;
  stream: string;
  subject: string;
  consumer: string;
  js: JetStreamClient;
  acks: AckWatcher;
  lastSeq(): Promise<number>;
  /** The consuming process, whose CPU time per event the throughput phase measures. */
  pid: number;
}


/**
 * 2. The event pipeline: synthetic identity.v1.user.signed_in events, with the CloudEvents headers
 * identity's outbox relay sends, published to IDENTITY and timed until presence acknowledges
 * them; presence acks only after its projection and the processed-event row have committed, so
 * the ack is the commit. Acks are observed by subscribing to JetStream's ack subjects
 * ($JS.ACK.<stream>.<consumer>.…), which carry the stream sequence. The baseline publishes the
 * same bytes and headers to a stream with the same settings and a consumer process that only acks.
 */
export const pipeline: Benchmark = {
  name: "pipeline",
  title: "Event pipeline (publish to committed presence projection) vs raw JetStream and Moleculer channels",
  async run(context) {
    const system = await new BenchSystem({ services: [], env: { presence: profileEnv(context, "pipeline-presence") } }).start();
    let raw: ManagedProcess | undefined;
    let moleculer: ManagedProcess | undefined;
    const watchers: AckWatcher[] = [];
    try {
      const connect = async (bench: BenchSystem) => {
        const connection = await bench.natsConnection();
        await ensureStreams(connection, [IDENTITY_STREAM, RAW_STREAM]);
        await bench.startService("presence");
        const acks = new AckWatcher(connection);
        watchers.push(acks);
        const jsm = await jetstreamManager(connection);
        return { acks, js: jetstream(connection, { timeout: 10_000 }), lastSeq: (stream: string) => jsm.streams.info(stream).then((info) => info.state.last_seq) };
      };
      const main = await connect(system);
      raw = spawnManaged("raw-consumer", process.execPath, ["bench/workers/raw-consumer.ts", String(system.natsPort), RAW_STREAM.name, RAW_CONSUMER, RAW_SUBJECT], {});
      await waitFor(() => raw!.output().includes("ready"), "raw consumer", 10_000);
      moleculer = spawnManaged(
        "moleculer-consumer",
        process.execPath,
        ["bench/peers/moleculer/consumer.ts", String(system.natsPort), MOLECULER_STREAM, MOLECULER_GROUP, MOLECULER_SUBJECT, path.join(system.dataDir, "moleculer.db")],
        { env: profileEnv(context, "pipeline-moleculer") },
      );
      await waitFor(() => moleculer!.output().includes("ready"), "Moleculer channels consumer", 20_000);
      const targets: Target[] = [
        { label: "raw", stream: RAW_STREAM.name, subject: RAW_SUBJECT, consumer: RAW_CONSUMER, ...main, lastSeq: () => main.lastSeq(RAW_STREAM.name), pid: raw.child.pid! },
        {
          label: "presence",
          stream: IDENTITY_STREAM.name,
          subject: SIGNED_IN_SUBJECT,
          consumer: PROJECTION_CONSUMER,
          ...main,
          lastSeq: () => main.lastSeq(IDENTITY_STREAM.name),
          pid: system.pid("presence"),
        },
        {
          label: "moleculer",
          stream: MOLECULER_STREAM,
          subject: MOLECULER_SUBJECT,
          consumer: MOLECULER_GROUP,
          ...main,
          lastSeq: () => main.lastSeq(MOLECULER_STREAM),
          pid: moleculer.child.pid!,
        },
      ];
      const count = Math.round(3_000 * context.timeScale);
      const latencyEvents = Math.round(3 * RATE * context.timeScale);
      const results = new Map(targets.map((t) => [t.label, { eps: [] as number[], cpuUs: [] as number[], p50: [] as number[], p99: [] as number[], max: [] as number[] }]));

      // Warm-up: JIT, prepared statements, consumer pull loops.
      for (const target of targets) await burst(target, await target.lastSeq(), 500, WINDOW);

      for (let run = 1; run <= context.runs; run++) {
        for (const target of targets) {
          const entry = results.get(target.label)!;
          const cpuBefore = cpuTimeMsOf(target.pid);
          const throughput = await burst(target, await target.lastSeq(), count, WINDOW);
          entry.eps.push(count / (throughput.elapsedMs / 1000));
          entry.cpuUs.push(((cpuTimeMsOf(target.pid) - cpuBefore) * 1000) / count);
          await sleep(200);
          const paced = await burst(target, await target.lastSeq(), latencyEvents, Infinity, RATE);
          const stats = percentiles(paced.latenciesMs);
          entry.p50.push(stats.p50);
          entry.p99.push(stats.p99);
          entry.max.push(Math.max(...paced.latenciesMs));
          context.log(
            `  run ${run} ${target.label}: ${entry.eps.at(-1)!.toFixed(0)} events/s, ${entry.cpuUs.at(-1)!.toFixed(0)} µs CPU/event; at ${RATE}/s p50 ${stats.p50.toFixed(2)} ms, p99 ${stats.p99.toFixed(2)} ms`,
          );
          await sleep(200);
        }
      }
      const r = results.get("raw")!;
      const p = results.get("presence")!;
      const m = results.get("moleculer")!;
      return {
        settings: { throughputEvents: count, window: WINDOW, latencyRate: RATE, latencyEvents, stream: "file storage, 2 min duplicate window" },
        metrics: [
          metric("events/s publish to committed projection", "events/s", "higher", p.eps, { name: "raw JetStream events/s", values: r.eps }, (_v, ratio) => ({
            text: ">= 0.8x raw JetStream",
            met: (ratio ?? 0) >= 0.8,
          })),
          metric("events/s vs the Moleculer peer", "events/s", "higher", p.eps, { name: "Moleculer channels events/s", values: m.eps }, (_v, ratio) => ({
            text: ">= 1.0x Moleculer channels",
            met: (ratio ?? 0) >= 1.0,
          })),
          metric("Moleculer channels: events/s", "events/s", "higher", m.eps, { name: "raw JetStream events/s", values: r.eps }),
          metric("consumer CPU per event (throughput phase)", "µs", "lower", p.cpuUs, { name: "Moleculer channels µs/event", values: m.cpuUs }),
          metric("Moleculer channels: consumer CPU per event", "µs", "lower", m.cpuUs, { name: "raw JetStream µs/event", values: r.cpuUs }),
          metric("consumer CPU per event vs raw JetStream", "µs", "lower", p.cpuUs, { name: "raw JetStream µs/event", values: r.cpuUs }),
          metric(`latency p50 at ${RATE} events/s`, "ms", "lower", p.p50, { name: "raw p50", values: r.p50 }),
          metric(`latency p99 at ${RATE} events/s`, "ms", "lower", p.p99, { name: "raw p99", values: r.p99 }, (value) => ({
            text: "< 10 ms",
            met: value.median < 10,
          })),
          metric(`latency max at ${RATE} events/s`, "ms", "lower", p.max, { name: "raw max", values: r.max }),
          metric(`Moleculer channels: latency p99 at ${RATE} events/s`, "ms", "lower", m.p99, { name: "raw p99", values: r.p99 }),
        ],
        notes: [
          `Throughput: ${count} events published with up to ${WINDOW} awaiting their PubAck, timed from the first publish to the last consumer ack. Latency: ${latencyEvents} events paced at ${RATE}/s, each timed from its publish call to its ack. CPU per event: user + system time of the consuming process (/proc/<pid>/stat) over the throughput phase, divided by the events; it moves far less with the machine's load than a rate does.`,
          "Moleculer peer (bench/peers/moleculer): moleculer 0.14.36 + @moleculer/channels 0.1.8 (the newest pair the channels package supports), NATS JetStream adapter, maxInFlight 256, ack after the handler; the handler decodes the same protobuf event and applies it in one better-sqlite3 transaction (processed-event row, ended-session check, insert) per event.",
          "Only nats-server and presence run (the bench creates the IDENTITY stream itself); audit, which also consumes IDENTITY, is not started so the figure is presence's hop alone.",
        ],
      };
    } finally {
      for (const watcher of watchers) watcher.close();
      await raw?.stop("SIGTERM");
      await moleculer?.stop("SIGTERM");
      await system.stop();
    }
  },
};

/** Sees every JetStream ack on the server and records when each (stream, consumer, sequence) was acked. */
class AckWatcher {
  private readonly subscription;
  private waiting: { stream: string; consumer: string; first: number; ackedAt: Float64Array; remaining: number; done: () => void } | undefined;

  constructor(connection: NatsConnection) {
    this.subscription = connection.subscribe("$JS.ACK.>", {
      callback: (_error, msg) => {
        const now = performance.now();
        const watch = this.waiting;
        if (!watch) return;
        // v1: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.…; v2 adds domain and account hash first.
        const tokens = msg.subject.split(".");
        const at = tokens.indexOf(watch.stream, 2);
        if (at < 0 || tokens[at + 1] !== watch.consumer) return;
        const index = Number(tokens[at + 3]) - watch.first;
        if (index < 0 || index >= watch.ackedAt.length || !Number.isNaN(watch.ackedAt[index]!)) return;
        watch.ackedAt[index] = now;
        if (--watch.remaining === 0) watch.done();
      },
    });
  }

  expect(stream: string, consumer: string, first: number, count: number): { ackedAt: Float64Array; all: Promise<void> } {
    const ackedAt = new Float64Array(count).fill(NaN);
    let done!: () => void;
    const all = new Promise<void>((resolve) => (done = resolve));
    this.waiting = { stream, consumer, first, ackedAt, remaining: count, done };
    return { ackedAt, all };
  }

  close(): void {
    this.subscription.unsubscribe();
  }
}

/**
 * Publishes `count` sign-in events (in order, so event i gets stream sequence lastSeq + 1 + i),
 * either as fast as `window` allows or paced at `rate` per second, and waits for all acks.
 */
async function burst(target: Target, lastSeq: number, count: number, window: number, rate?: number) {
  const { js, acks } = target;
  const { ackedAt, all } = acks.expect(target.stream, target.consumer, lastSeq + 1, count);
  const publishedAt = new Float64Array(count);
  const inFlight = new Set<Promise<unknown>>();
  const errors: Error[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    if (rate !== undefined) {
      const due = started + (i * 1000) / rate;
      while (performance.now() < due - 0.5) await sleep(Math.max(0, Math.min(1, due - performance.now())));
    }
    while (inFlight.size >= window) await Promise.race(inFlight);
    const { data, headers, id } = signedInEvent();
    publishedAt[i] = performance.now();
    const publish = js.publish(target.subject, data, { headers, msgID: id }).then(
      (ack) => {
        if (ack.seq !== lastSeq + 1 + i) errors.push(new Error(`event ${i} got sequence ${ack.seq}, expected ${lastSeq + 1 + i}`));
      },
      (error: Error) => errors.push(error),
    );
    inFlight.add(publish);
    void publish.finally(() => inFlight.delete(publish));
  }
  await Promise.all(inFlight);
  if (errors.length > 0) throw errors[0];
  const timeout = sleep(60_000).then(() => {
    throw new Error(`${target.label}: not every event was acked within 60 s`);
  });
  await Promise.race([all, timeout]);
  const last = Math.max(...ackedAt);
  const latenciesMs = Array.from(ackedAt, (acked, i) => acked - publishedAt[i]!);
  return { elapsedMs: last - started, latenciesMs };
}
