import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerMessages,
  type JsMsg,
} from "@nats-io/jetstream";
import { headers as makeHeaders, nanos, type NatsConnection } from "@nats-io/transport-node";
import { propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import type { ControlledTransaction, Kysely, Transaction } from "kysely";
import type { PlatformTables } from "../db/database.ts";
import { activeFaults } from "../faults.ts";
import type { Logger } from "../logger.ts";
import { consumerLag, eventsConsumed, eventsDeadLettered, eventsRedelivered } from "../metrics.ts";
import { fromHeaders, traceIdOf, type EventEnvelope } from "./cloudevents.ts";
import { deadLetterSubject, isMissingStream } from "./topology.ts";

const tracer = trace.getTracer("@meshwork/platform/consumer");

export interface ReceivedEvent<M> extends EventEnvelope {
  message: M;
  data: Uint8Array;
  traceId: string;
  streamSequence: number;
}

/**
 * A durable consumer as a service declares it in its events.ts. `handle` runs inside the database
 * transaction that also records the event id, so a redelivered event is never applied twice.
 */
export interface ConsumerSpec<Tables, Desc extends DescMessage> {
  /** Durable name: `<service>-<purpose>`. */
  name: string;
  stream: string;
  filterSubjects: string[];
  /** Decodes the body into `event.message`; without it the handler reads `event.data` (audit keeps raw bytes). */
  schema?: Desc;
  /** Tries before the message goes to DEADLETTER. */
  maxDeliver?: number;
  /** Delay before each retry; the last value repeats. */
  backoffMs?: number[];
  handle(event: ReceivedEvent<MessageShape<Desc>>, trx: Transaction<Tables & PlatformTables>): Promise<void>;
}

export type AnyConsumerSpec<Tables> = ConsumerSpec<Tables, DescMessage>;

export function defineConsumer<Tables, Desc extends DescMessage>(spec: ConsumerSpec<Tables, Desc>): AnyConsumerSpec<Tables> {
  return spec as unknown as AnyConsumerSpec<Tables>;
}

type Outcome = "applied" | "duplicate";

/** Events applied in one transaction at most; bounds how much one failed commit sends back. */
const MAX_BATCH = 100;

/**
 * Runs one durable pull consumer: explicit acks, bounded retries with backoff, then a dead letter
 * with the error and delivery count in its headers, and the consumer moves on.
 */
export class ConsumerRunner<Tables> {
  private readonly spec: AnyConsumerSpec<Tables> & { maxDeliver: number; backoffMs: number[] };
  private readonly db: Kysely<Tables & PlatformTables>;
  private readonly connection: NatsConnection;
  private readonly log: Logger;
  private messages: ConsumerMessages | undefined;
  private loop: Promise<void> | undefined;
  private attached = false;
  /** Its stream does not exist yet: the producer has not started (see isMissingStream). */
  private awaitingStream = false;
  private stopped = false;
  /** Held while a message is being applied; a rebuild takes it to pause the consumer. */
  private lock: Promise<void> = Promise.resolve();

  constructor(spec: AnyConsumerSpec<Tables>, db: Kysely<Tables & PlatformTables>, connection: NatsConnection, log: Logger) {
    this.spec = { maxDeliver: 5, backoffMs: [200, 1_000, 5_000], ...spec };
    this.db = db;
    this.connection = connection;
    this.log = log.child({ consumer: spec.name });
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

  /** Stops pulling, lets the message in hand finish and be acked. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.attached = false;
    await this.messages?.close();
    await this.loop;
  }

  /** Runs `work` while no message is being applied, and holds new ones back until it is done. */
  async exclusive<T>(work: () => Promise<T>): Promise<T> {
    const previous = this.lock;
    let release!: () => void;
    this.lock = new Promise((resolve) => (release = resolve));
    await previous;
    try {
      return await work();
    } finally {
      release();
    }
  }

  /** Applies one event as the live consumer would: used by replays and rebuilds. */
  async apply(envelope: EventEnvelope, data: Uint8Array, streamSequence: number): Promise<Outcome> {
    return this.db.transaction().execute((trx) => this.applyIn(trx, envelope, data, streamSequence));
  }

  /** Records the event id and runs the handler in `trx`; a seen id is a duplicate and changes nothing. */
  private async applyIn(trx: Transaction<Tables & PlatformTables>, envelope: EventEnvelope, data: Uint8Array, streamSequence: number): Promise<Outcome> {
    const event: ReceivedEvent<MessageShape<DescMessage>> = {
      ...envelope,
      message: (this.spec.schema ? fromBinary(this.spec.schema, data) : undefined) as MessageShape<DescMessage>,
      data,
      traceId: traceIdOf(envelope.traceparent),
      streamSequence,
    };
    const inserted = await (trx as unknown as Transaction<PlatformTables>)
      .insertInto("processed_events")
      .values({ consumer: this.spec.name, event_id: envelope.id, processed_at: Date.now() })
      .onConflict((conflict) => conflict.doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 0) return "duplicate";
    activeFaults().failIf("reject-event", envelope.id, `refusing event ${envelope.id}`);
    await this.spec.handle(event, trx);
    return "applied";
  }

  /**
   * Drops the projection (via `reset`, in the same transaction as forgetting the handled event
   * ids) and replays the stream into it from the first message, with live delivery paused. The
   * same handler applies each event, so the result is what live consumption would have built.
   */
  async rebuild(reset: (trx: Transaction<Tables & PlatformTables>) => Promise<void>): Promise<number> {
    return this.exclusive(async () => {
      await this.db.transaction().execute(async (trx) => {
        await reset(trx as unknown as Transaction<Tables & PlatformTables>);
        await (trx as unknown as Transaction<PlatformTables>).deleteFrom("processed_events").where("consumer", "=", this.spec.name).execute();
      });
      const jsm = await jetstreamManager(this.connection);
      const { state } = await jsm.streams.info(this.spec.stream);
      if (state.messages === 0) return 0;
      const replay = await jetstream(this.connection).consumers.get(this.spec.stream, this.spec.filterSubjects.length > 0 ? { filter_subjects: this.spec.filterSubjects } : {});
      let applied = 0;
      let done = false;
      while (!done) {
        const batch = await replay.fetch({ max_messages: 500, expires: 2_000 });
        let received = 0;
        for await (const msg of batch) {
          received++;
          try {
            if ((await this.apply(fromHeaders(msg.headers, msg.subject), msg.data, msg.seq)) === "applied") applied++;
          } catch (error) {
            this.log.warn({ err: (error as Error).message, seq: msg.seq }, "rebuild skipped an event its handler refused");
          }
          if (msg.seq >= state.last_seq || msg.info.pending === 0) done = true;
        }
        if (received === 0) done = true;
      }
      this.log.info({ applied }, "projection rebuilt from the stream");
      return applied;
    });
  }

  /**
   * Takes whatever has already arrived (up to MAX_BATCH) and applies it in one transaction, each
   * event under its own savepoint: one commit per batch instead of one per event, while a failing
   * event still rolls back alone and is retried or dead-lettered alone. Acks follow the commit.
   */
  private async run(messages: ConsumerMessages): Promise<void> {
    const iterator = messages[Symbol.asyncIterator]();
    // A next() that did not settle before the batch closed is kept for the following batch: an
    // async iterator's next() cannot be taken back, and its message must not be dropped.
    let waiting: Promise<IteratorResult<JsMsg>> | undefined;
    for (;;) {
      const first = await (waiting ?? iterator.next());
      waiting = undefined;
      if (first.done) return;
      const batch = [first.value];
      let done = false;
      while (batch.length < MAX_BATCH) {
        waiting = iterator.next();
        // Messages already buffered settle within microtasks; setImmediate runs after them, so it
        // wins only when nothing more has arrived yet, and the batch closes without waiting.
        const next = await Promise.race([waiting, new Promise<"none yet">((resolve) => setImmediate(() => resolve("none yet")))]);
        if (next === "none yet") break;
        waiting = undefined;
        if (next.done) {
          done = true;
          break;
        }
        batch.push(next.value);
      }
      await this.exclusive(() => this.processBatch(batch));
      if (done) return;
    }
  }

  private async processBatch(batch: JsMsg[]): Promise<void> {
    const results: { msg: JsMsg; outcome?: Outcome; error?: Error }[] = [];
    const trx = await this.db.startTransaction().execute();
    try {
      for (const msg of batch) results.push(await this.processInBatch(trx, msg));
      await trx.commit().execute();
    } catch (error) {
      // The batch itself failed (the commit, the connection): nothing was applied, and each
      // message goes through the usual bounded retries, so a persistent fault ends in DEADLETTER.
      await trx.rollback().execute().catch(() => undefined);
      this.log.warn({ err: (error as Error).message, messages: batch.length }, "event batch failed");
      for (const msg of batch) await this.retryOrDeadLetter(msg, error as Error, msg.info.deliveryCount);
      return;
    }
    for (const { msg, outcome, error } of results) {
      if (outcome) {
        msg.ack();
        eventsConsumed.add(1, { consumer: this.spec.name, outcome });
      } else {
        await this.retryOrDeadLetter(msg, error!, msg.info.deliveryCount);
      }
    }
  }

  private async processInBatch(trx: ControlledTransaction<Tables & PlatformTables>, msg: JsMsg): Promise<{ msg: JsMsg; outcome?: Outcome; error?: Error }> {
    const deliveries = msg.info.deliveryCount;
    if (deliveries > 1) eventsRedelivered.add(1, { consumer: this.spec.name });
    const parent = propagation.extract(ROOT_CONTEXT, {
      traceparent: msg.headers?.get("traceparent") || undefined,
      tracestate: msg.headers?.get("tracestate") || undefined,
    });
    return tracer.startActiveSpan(
      `${msg.subject} process`,
      {
        kind: SpanKind.CONSUMER,
        attributes: {
          "messaging.system": "nats",
          "messaging.operation.type": "process",
          "messaging.operation.name": "process",
          "messaging.destination.name": msg.subject,
          "messaging.consumer.group.name": this.spec.name,
          "messaging.message.id": msg.headers?.get("ce-id") ?? "",
          "messaging.nats.stream.sequence": msg.seq,
          "messaging.nats.delivery_count": deliveries,
        },
      },
      parent,
      async (span) => {
        const savepoint = await trx.savepoint("event").execute();
        try {
          const outcome = await this.applyIn(savepoint, fromHeaders(msg.headers, msg.subject), msg.data, msg.seq);
          await savepoint.releaseSavepoint("event").execute();
          span.setAttribute("meshwork.outcome", outcome);
          return { msg, outcome };
        } catch (error) {
          await savepoint.rollbackToSavepoint("event").execute();
          await savepoint.releaseSavepoint("event").execute();
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          return { msg, error: error as Error };
        } finally {
          span.end();
        }
      },
    );
  }

  private async retryOrDeadLetter(msg: JsMsg, error: Error, deliveries: number): Promise<void> {
    const malformed = error.name === "MalformedEventError";
    if (!malformed && deliveries < this.spec.maxDeliver) {
      const delays = this.spec.backoffMs;
      const delay = delays[Math.min(deliveries - 1, delays.length - 1)] ?? 1_000;
      this.log.warn({ err: error.message, deliveries, retryInMs: delay, seq: msg.seq }, "event handler failed; will retry");
      msg.nak(delay);
      return;
    }
    try {
      await this.deadLetter(msg, error, deliveries);
      msg.term(`dead-lettered: ${oneLine(error.message)}`);
      eventsDeadLettered.add(1, { consumer: this.spec.name });
      this.log.error({ err: error.message, deliveries, seq: msg.seq }, "event dead-lettered");
    } catch (publishError) {
      // The dead letter could not be written (NATS trouble): keep the message and try again later.
      this.log.error({ err: (publishError as Error).message }, "could not dead-letter; will retry");
      msg.nak(this.spec.backoffMs.at(-1) ?? 5_000);
    }
  }

  private async deadLetter(msg: JsMsg, error: Error, deliveries: number): Promise<void> {
    const headers = makeHeaders();
    for (const [key, values] of msg.headers ?? []) {
      if (key.toLowerCase() === "nats-msg-id") continue;
      for (const value of values) headers.append(key, value);
    }
    headers.set("meshwork-dlq-error", oneLine(`${error.name}: ${error.message}`));
    headers.set("meshwork-dlq-deliveries", String(deliveries));
    headers.set("meshwork-dlq-stream", this.spec.stream);
    headers.set("meshwork-dlq-stream-sequence", String(msg.seq));
    headers.set("meshwork-dlq-consumer", this.spec.name);
    headers.set("meshwork-dlq-subject", msg.subject);
    headers.set("meshwork-dlq-time", new Date().toISOString());
    const eventId = msg.headers?.get("ce-id") || `seq-${msg.seq}`;
    await jetstream(this.connection).publish(deadLetterSubject(this.spec.stream, this.spec.name), msg.data, {
      headers,
      msgID: `${eventId}:${this.spec.name}`,
    });
  }
}

/** JetStream refuses header values with line breaks; stack-like messages are folded onto one line. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " | ").slice(0, 1_000);
}

