import { setTimeout as sleep } from "node:timers/promises";
import { toBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { MsgHdrs } from "@nats-io/transport-node";
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from "@opentelemetry/api";
import { sql, type Kysely, type Selectable, type Transaction } from "kysely";
import type { PlatformTables } from "../db/database.ts";
import { preparedQuery } from "../db/prepared.ts";
import { Faults } from "../faults.ts";
import { uuidv7 } from "../ids.ts";
import type { Logger } from "../logger.ts";
import { eventsPublished, outboxBacklog, outboxOldestAge } from "../metrics.ts";
import { toHeaders } from "./cloudevents.ts";

const tracer = trace.getTracer("@meshwork/platform/outbox");

export interface OutgoingEvent<Desc extends DescMessage> {
  subject: string;
  schema: Desc;
  message: MessageShape<Desc>;
  /** The entity the event is about; the relay keeps each aggregate's events in commit order. */
  aggregateId: string;
}

/**
 * Writes an event into the outbox inside the caller's transaction, so the event exists if and
 * only if the state change does. The active trace context is stored with it, so the publish
 * (and everything downstream) joins the trace of the request that caused it.
 */
export async function enqueueEvent<Desc extends DescMessage, Tables extends PlatformTables>(
  transaction: Transaction<Tables>,
  event: OutgoingEvent<Desc>,
): Promise<string> {
  const trx = transaction as unknown as Transaction<PlatformTables>;
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  const id = uuidv7();
  await insertOutboxEvent.execute(
    trx,
    id,
    event.subject,
    event.schema.typeName,
    event.aggregateId,
    toBinary(event.schema, event.message),
    carrier["traceparent"] ?? null,
    carrier["tracestate"] ?? null,
    Date.now(),
  );
  return id;
}

/** Every event a service emits is one of these, in the caller's transaction: compiled once (db/prepared.ts). */
const insertOutboxEvent = preparedQuery(
  (
    db: Kysely<PlatformTables>,
    id: string,
    subject: string,
    type: string,
    aggregateId: string,
    payload: Uint8Array,
    traceparent: string | null,
    tracestate: string | null,
    createdAt: number,
  ) =>
    db.insertInto("outbox").values({ id, subject, type, aggregate_id: aggregateId, payload, traceparent, tracestate, created_at: createdAt, published_at: null }),
);

// The relay reads and marks every event once (db/prepared.ts); in identity that happens during
// the next sign-in's hash, on the cores the hash shares.
const pendingEvents = preparedQuery((db: Kysely<PlatformTables>, limit: number) =>
  db.selectFrom("outbox").selectAll().where("published_at", "is", null).orderBy("seq").limit(limit),
);
const markPublished = preparedQuery((db: Kysely<PlatformTables>, seq: number, publishedAt: number) =>
  db.updateTable("outbox").set({ published_at: publishedAt }).where("seq", "=", seq),
);

/** Where the relay sends events: JetStream in a service (`jetstream(connection)`), a recorder in tests. */
export interface EventPublisher {
  publish(subject: string, payload: Uint8Array, options: { msgID: string; headers: MsgHdrs }): Promise<{ stream: string; duplicate: boolean }>;
}

export interface OutboxRelayOptions {
  db: Kysely<PlatformTables>;
  isPostgres: boolean;
  publisher: EventPublisher;
  source: string;
  log: Logger;
  batchSize?: number;
  idlePollMs?: number;
  /** How long after a nudge the relay wakes (see `nudge`). */
  nudgeDelayMs?: number;
  maxBackoffMs?: number;
  /** Injected faults (MESHWORK_FAULTS): `crash-before-publish` dies between the commit and the publish. */
  faults?: Faults;
}

/**
 * Publishes committed outbox entries in commit order, with the event id as Nats-Msg-Id so a
 * republish after a crash (published, not yet marked) is dropped by the stream's de-duplication.
 * While NATS is unreachable it retries with capped exponential backoff; nothing is lost because
 * nothing leaves the table until JetStream has acknowledged it.
 */
export class OutboxRelay {
  private readonly options: Required<OutboxRelayOptions>;
  private wake: (() => void) | undefined;
  private nudged = false;
  private wakeRequested = false;
  private stopped = false;
  private loop: Promise<void> | undefined;

  constructor(options: OutboxRelayOptions) {
    this.options = {
      batchSize: 100,
      idlePollMs: 1_000,
      nudgeDelayMs: 3,
      maxBackoffMs: 5_000,
      faults: new Faults(),
      ...options,
    };
    outboxBacklog.addCallback(async (result) => {
      const stats = await this.backlog();
      result.observe(stats.count);
    });
    outboxOldestAge.addCallback(async (result) => {
      const stats = await this.backlog();
      result.observe(stats.oldestAgeSeconds);
    });
  }

  start(): void {
    this.loop = this.run();
  }

  /**
   * Called after a commit that enqueued events, so they go out now rather than at the next poll:
   * `nudgeDelayMs` later, so that the reply to the request that committed reaches its caller
   * first. Woken at once, the relay's query, span and publish (and nats-server's work on the
   * publish) ran on the same cores as the reply's delivery and added ~1.1 ms to a sign-in's round
   * trip (docs/performance.md, fifth round). Several nudges within the delay wake the relay once.
   */
  nudge(): void {
    if (this.nudged) return;
    this.nudged = true;
    setTimeout(() => {
      this.nudged = false;
      this.wakeNow();
    }, this.options.nudgeDelayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeNow();
    await this.loop;
  }

  /**
   * Ends the relay's idle wait; while it is publishing, makes the next idle wait end at once, so
   * an event committed during a publish (after its batch was read) is not left for the next poll.
   */
  private wakeNow(): void {
    if (this.wake) this.wake();
    else this.wakeRequested = true;
  }

  async backlog(): Promise<{ count: number; oldestAgeSeconds: number }> {
    const row = await this.options.db
      .selectFrom("outbox")
      .select((eb) => [eb.fn.countAll<number>().as("count"), eb.fn.min("created_at").as("oldest")])
      .where("published_at", "is", null)
      .executeTakeFirst();
    const oldest = row?.oldest == null ? undefined : Number(row.oldest);
    return {
      count: Number(row?.count ?? 0),
      oldestAgeSeconds: oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000),
    };
  }

  private async run(): Promise<void> {
    let backoffMs = 100;
    while (!this.stopped) {
      let published = 0;
      try {
        published = await this.publishBatch();
        backoffMs = 100;
      } catch (error) {
        this.options.log.warn({ err: (error as Error).message, retryInMs: backoffMs }, "outbox relay could not publish; will retry");
        await sleep(backoffMs);
        backoffMs = Math.min(backoffMs * 2, this.options.maxBackoffMs);
        continue;
      }
      if (published < this.options.batchSize) await this.idle();
    }
    // One last pass on shutdown, so events committed by the calls that just finished go out now
    // rather than at the next start. If NATS is down they simply stay in the outbox.
    await this.publishBatch().catch(() => undefined);
  }

  private idle(): Promise<void> {
    if (this.wakeRequested || this.stopped) {
      this.wakeRequested = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(done, this.options.idlePollMs);
      const self = this;
      function done() {
        clearTimeout(timer);
        self.wake = undefined;
        resolve();
      }
      this.wake = done;
    });
  }

  private async publishBatch(): Promise<number> {
    const { db } = this.options;
    if (this.options.isPostgres) {
      // With several replicas on one PostgreSQL database, one relay at a time keeps commit order.
      return db.transaction().execute(async (trx) => {
        const lock = await sql<{ locked: boolean }>`select pg_try_advisory_xact_lock(hashtext('meshwork-outbox')) as locked`.execute(trx);
        if (!lock.rows[0]?.locked) return 0;
        return this.publishPending(trx);
      });
    }
    return this.publishPending(db);
  }

  private async publishPending(db: Kysely<PlatformTables>): Promise<number> {
    const { rows: pending } = await pendingEvents.execute(db, this.options.batchSize);
    for (const entry of pending) {
      this.options.faults.crashIf("crash-before-publish", `after the commit of event ${entry.id}, before publishing it`);
      await this.publishOne(entry);
      await markPublished.execute(db, entry.seq, Date.now());
    }
    return pending.length;
  }

  private async publishOne(entry: Selectable<PlatformTables["outbox"]>): Promise<void> {
    const parent = propagation.extract(ROOT_CONTEXT, {
      traceparent: entry.traceparent ?? undefined,
      tracestate: entry.tracestate ?? undefined,
    });
    await tracer.startActiveSpan(
      `${entry.subject} publish`,
      {
        kind: SpanKind.PRODUCER,
        attributes: {
          "messaging.system": "nats",
          "messaging.operation.type": "send",
          "messaging.operation.name": "publish",
          "messaging.destination.name": entry.subject,
          "messaging.message.id": entry.id,
          "messaging.message.body.size": entry.payload.byteLength,
          "meshwork.outbox.seq": entry.seq,
          "meshwork.outbox.wait_ms": Date.now() - entry.created_at,
        },
      },
      parent,
      async (span) => {
        const carrier: Record<string, string> = {};
        propagation.inject(context.active(), carrier);
        const headers = toHeaders({
          id: entry.id,
          type: entry.type,
          source: this.options.source,
          subject: entry.subject,
          time: new Date(entry.created_at),
          traceparent: carrier["traceparent"],
          tracestate: carrier["tracestate"],
        });
        try {
          const ack = await this.options.publisher.publish(entry.subject, entry.payload, { msgID: entry.id, headers });
          span.setAttribute("messaging.nats.stream", ack.stream);
          span.setAttribute("meshwork.duplicate", ack.duplicate);
          eventsPublished.add(1, { subject: entry.subject });
        } catch (error) {
          span.setStatus({ code: SpanStatusCode.ERROR, message: (error as Error).message });
          throw error;
        } finally {
          span.end();
        }
      },
    );
  }
}
