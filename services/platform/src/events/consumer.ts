import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager, type ConsumerMessages, type JsMsg } from "@nats-io/jetstream";
import { nanos, type NatsConnection } from "@nats-io/transport-node";
import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes } from "@opentelemetry/api";
import type { Kysely, Transaction } from "kysely";
import type { PlatformTables } from "../db/database.ts";
import type { Logger } from "../logger.ts";
import { consumerLag, eventsConsumed, eventsRedelivered } from "../metrics.ts";
import { fromHeaders, type EventEnvelope } from "./cloudevents.ts";
import { isMissingStream } from "./topology.ts";
import { applyOnce, type Outcome } from "./consumer/apply.ts";
import { applyBatch, batchesOf } from "./consumer/batching.ts";
import { retryOrDeadLetter } from "./consumer/dead-lettering.ts";
import { rebuildProjection } from "./consumer/rebuilding.ts";
import type { ConsumerSpec } from "./consumer/spec.ts";

export { defineConsumer, defineVariantConsumer, type ConsumerSpec, type RawEvent, type ReceivedEvent } from "./consumer/spec.ts";

const tracer = trace.getTracer("@meshwork/platform/consumer");

/**
 * Runs one durable pull consumer: attaches it (waiting for its stream), feeds what arrives to
 * batches (consumer/batching.ts), acks what applied and sends the rest to retries or DEADLETTER
 * (consumer/dead-lettering.ts), and pauses for rebuilds (consumer/rebuilding.ts).
 */
export class ConsumerRunner<Tables> {
  private readonly spec: ConsumerSpec<Tables>;
  private readonly db: Kysely<Tables & PlatformTables>;
  private readonly connection: NatsConnection;
  private readonly log: Logger;
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private attached = false;
  /** Its stream does not exist yet: the producer has not started (see isMissingStream). */
  private awaitingStream = false;
  private stopped = false;
  /** Held while a batch is being applied; a rebuild takes it to pause the consumer. */
  private lock: Promise<void> = Promise.resolve();
  /** Span name and shared attributes per subject (spanShape). */
  private readonly spanShapes = new Map<string, { name: string; attributes: Attributes }>();
  private readonly metricAttributes;

  constructor(spec: ConsumerSpec<Tables>, db: Kysely<Tables & PlatformTables>, connection: NatsConnection, log: Logger) {
    this.spec = spec;
    this.db = db;
    this.connection = connection;
    this.log = log.child({ consumer: spec.name });
    this.metricAttributes = {
      consumer: { consumer: spec.name },
      applied: { consumer: spec.name, outcome: "applied" },
      duplicate: { consumer: spec.name, outcome: "duplicate" },
    };
    consumerLag.addCallback(async (result) => {
      if (!this.attached) return;
      const info = await jetstreamManager(this.connection).then((jsm) => jsm.consumers.info(this.spec.stream, this.spec.name)).catch(() => undefined);
      if (info) result.observe(info.num_pending + info.num_ack_pending, { consumer: this.spec.name, stream: this.spec.stream });
    });
  }

  get name(): string {
    return this.spec.name;
  }

  isAttached(): boolean {
    return this.attached;
  }

  /**
   * Attached, or waiting for a stream its producer has not created yet: either way nothing is
   * left unconsumed, so the service may serve. Waiting for any other reason is not ready.
   */
  isReady(): boolean {
    return this.attached || this.awaitingStream;
  }

  /** Creates or updates the durable consumer, waiting for the stream if its producer is not up yet. */
  async start(): Promise<void> {
    const jsm = await jetstreamManager(this.connection);
    const config = {
      durable_name: this.spec.name,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ...(this.spec.filterSubjects.length > 0 ? { filter_subjects: this.spec.filterSubjects } : {}),
      // After a crash, what the dead process had pulled comes back after this long.
      ack_wait: nanos(10_000),
      // Retries are counted here, not by the server, so that every message that runs out of tries
      // reaches DEADLETTER instead of being silently dropped at max_deliver.
      max_deliver: -1,
      max_ack_pending: 1_000,
    };
    for (let attempt = 0; !this.stopped; attempt++) {
      try {
        await jsm.consumers.add(this.spec.stream, config).catch(async (error: Error) => {
          if (!/already exists|consumer name already in use/i.test(error.message)) throw error;
          await jsm.consumers.update(this.spec.stream, this.spec.name, config);
        });
        break;
      } catch (error) {
        this.awaitingStream = isMissingStream(error);
        if (attempt % 10 === 0) this.log.warn({ err: (error as Error).message, stream: this.spec.stream }, "waiting for stream");
        await new Promise((resolve) => setTimeout(resolve, 500));
      }
    }
    if (this.stopped) return;
    const consumer = await jetstream(this.connection).consumers.get(this.spec.stream, this.spec.name);
    this.messages = await consumer.consume({ max_messages: 256 });
    this.attached = true;
    this.awaitingStream = false;
    this.loop = this.run(this.messages);
    this.log.info({ stream: this.spec.stream, subjects: this.spec.filterSubjects }, "consumer attached");
  }

  /** Stops pulling, lets the batch in hand finish and be acked. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.attached = false;
    await this.messages?.close();
    await this.loop;
  }

  /** Runs `work` while no batch is being applied, and holds new ones back until it is done. */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.lock;
    let release = () => {};
    this.lock = new Promise((resolve) => (release = resolve));
    await previous;
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** Rebuilds the projection from the stream (consumer/rebuilding.ts) with live delivery paused. */
  async rebuild(reset: (trx: Transaction<Tables & PlatformTables>) => Promise<void>): Promise<number> {
    return this.exclusive(() => rebuildProjection(this.spec, this.db, this.connection, this.log, reset));
  }

  private async run(messages: ConsumerMessages): Promise<void> {
    for await (const batch of batchesOf(messages)) await this.exclusive(() => this.processBatch(batch));
  }

  /** One transaction per batch, one savepoint per event; acks follow the commit. */
  private async processBatch(batch: JsMsg[]): Promise<void> {
    const retry = (msg: JsMsg, error: Error) => retryOrDeadLetter(msg, error, this.spec, this.connection, this.log);
    // Metrics are counted per batch: one add() per outcome instead of one per event.
    const redelivered = batch.reduce((count, msg) => count + (msg.info.deliveryCount > 1 ? 1 : 0), 0);
    if (redelivered > 0) eventsRedelivered.add(redelivered, this.metricAttributes.consumer);
    let results;
    try {
      results = await applyBatch(this.db, batch, (trx, msg) => this.processTraced(trx, msg));
    } catch (error) {
      // The batch itself failed (the commit, the connection): nothing was applied, and each
      // message goes through the usual bounded retries, so a persistent fault ends in DEADLETTER.
      this.log.warn({ err: (error as Error).message, messages: batch.length }, "event batch failed");
      for (const msg of batch) await retry(msg, error as Error);
      return;
    }
    let applied = 0;
    let duplicates = 0;
    for (const { msg, outcome, error } of results) {
      if (outcome) {
        msg.ack();
        if (outcome === "applied") applied++;
        else duplicates++;
      } else {
        await retry(msg, error ?? new Error("event failed"));
      }
    }
    if (applied > 0) eventsConsumed.add(applied, this.metricAttributes.applied);
    if (duplicates > 0) eventsConsumed.add(duplicates, this.metricAttributes.duplicate);
  }

  /** Applies one message under a CONSUMER span that continues the producer's trace. */
  private processTraced(trx: Transaction<Tables & PlatformTables>, msg: JsMsg): Promise<Outcome> {
    let envelope: EventEnvelope | undefined;
    let malformed: Error | undefined;
    try {
      envelope = fromHeaders(msg.headers, msg.subject);
    } catch (error) {
      malformed = error as Error;
    }
    // A malformed message still joins its producer's trace when it carries one.
    const parent = propagation.extract(
      ROOT_CONTEXT,
      envelope
        ? { traceparent: envelope.traceparent, tracestate: envelope.tracestate }
        : { traceparent: msg.headers?.get("traceparent") || undefined, tracestate: msg.headers?.get("tracestate") || undefined },
    );
    const shape = this.spanShape(msg.subject);
    return tracer.startActiveSpan(shape.name, { kind: SpanKind.CONSUMER, attributes: shape.attributes }, parent, async (span) => {
      try {
        // Attributes of this message only: set when someone records them.
        if (span.isRecording()) {
          span.setAttributes({
            "messaging.message.id": envelope?.id ?? msg.headers?.get("ce-id") ?? "",
            "messaging.nats.stream.sequence": msg.seq,
            "messaging.nats.delivery_count": msg.info.deliveryCount,
          });
        }
        if (!envelope) throw malformed;
        const outcome = await applyOnce(this.spec, trx, envelope, msg.data, msg.seq);
        span.setAttribute("meshwork.outcome", outcome);
        return outcome;
      } catch (error) {
        span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
        throw error;
      } finally {
        span.end();
      }
    });
  }

  /** The span name and the attributes every message on `subject` shares (the sampler sees them). */
  private spanShape(subject: string): { name: string; attributes: Attributes } {
    let shape = this.spanShapes.get(subject);
    if (!shape) {
      shape = {
        name: `${subject} process`,
        attributes: {
          "messaging.system": "nats",
          "messaging.operation.type": "process",
          "messaging.operation.name": "process",
          "messaging.destination.name": subject,
          "messaging.consumer.group.name": this.spec.name,
        },
      };
      // Subjects name event types, not aggregates, so this stays small; bounded all the same.
      if (this.spanShapes.size >= 1_000) this.spanShapes.clear();
      this.spanShapes.set(subject, shape);
    }
    return shape;
  }
}
