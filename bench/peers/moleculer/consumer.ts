/**
 * The Moleculer peer of presence's projection consumer: a ServiceBroker with the
 * @moleculer/channels middleware on its NATS JetStream adapter (a durable consumer, ack after the
 * handler returns, redelivery on a throw), whose channel handler applies a sign-in exactly as
 * presence does: decode the protobuf event (@bufbuild/protobuf, the same generated schema), then
 * in one better-sqlite3 transaction record the event id (idempotency: a redelivered event is
 * skipped), check the session has not ended, and insert it.
 * Usage: node bench/peers/moleculer/consumer.ts <nats port> <stream> <group> <subject> <database path>
 */
import { fromBinary } from "@bufbuild/protobuf";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { UserEventSchema, type UserEvent } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { Middleware as ChannelsMiddleware } from "@moleculer/channels";
import Database from "better-sqlite3";
import { ServiceBroker, Serializers, type Middleware } from "moleculer";
import type { JsMsg } from "nats";

const [port, stream, group, subject, databasePath] = process.argv.slice(2);
if (!port || !stream || !group || !subject || !databasePath) throw new Error("usage: consumer.ts <nats port> <stream> <group> <subject> <database path>");

/** Moleculer's documented extension point for payload formats: events are protobuf, not JSON. */
class UserEventSerializer extends Serializers.Base {
  override serialize(message: UserEvent): Buffer {
    throw new Error(`this consumer only reads events (${message.$typeName})`);
  }
  override deserialize(bytes: Buffer): UserEvent {
    return fromBinary(UserEventSchema, bytes);
  }
}

const db = new Database(databasePath);
db.pragma("journal_mode = WAL");
db.pragma("synchronous = NORMAL");
db.exec(`
  create table if not exists processed_events (consumer text not null, event_id text not null, processed_at integer not null, primary key (consumer, event_id));
  create table if not exists online_sessions (session_id text primary key, user_id text not null, email text not null, display_name text not null, started_at bigint not null, expires_at bigint not null);
  create index if not exists online_sessions_user on online_sessions (user_id);
  create index if not exists online_sessions_expiry on online_sessions (expires_at);
  create table if not exists ended_sessions (session_id text primary key, ended_at integer not null);
`);
const recordEvent = db.prepare("insert into processed_events (consumer, event_id, processed_at) values (?, ?, ?) on conflict do nothing");
const hasEnded = db.prepare("select 1 from ended_sessions where session_id = ?");
const addSession = db.prepare("insert into online_sessions values (?, ?, ?, ?, ?, ?) on conflict (session_id) do nothing");
const apply = db.transaction((eventId: string, event: UserEvent) => {
  if (recordEvent.run(group, eventId, Date.now()).changes === 0) return;
  if (event.event.case !== "signedIn") return;
  const signedIn = event.event.value;
  const expiresAt = signedIn.expiresAt ? timestampMs(signedIn.expiresAt) : 0;
  if (expiresAt <= Date.now() || hasEnded.get(signedIn.sessionId)) return;
  const startedAt = signedIn.occurredAt ? timestampMs(signedIn.occurredAt) : Date.now();
  addSession.run(signedIn.sessionId, signedIn.userId, signedIn.email, signedIn.displayName, startedAt, expiresAt);
});

const broker = new ServiceBroker({
  nodeID: "bench-moleculer",
  logLevel: "warn",
  middlewares: [
    ChannelsMiddleware({
      adapter: {
        type: "NATS",
        options: {
          nats: {
            url: `nats://127.0.0.1:${port}`,
            // IDENTITY's settings (file storage, limits retention, 2 min duplicate window).
            streamConfig: { name: stream, subjects: [subject], storage: "file", retention: "limits", duplicate_window: 120_000_000_000 },
            consumerOptions: { config: { deliver_policy: "all", ack_wait: 10_000_000_000 } },
          },
          // A serializer instance is accepted (Serializers.resolve) though typed as a name.
          serializer: new UserEventSerializer(),
          // Messages handed to handlers at once (the consumer's max_ack_pending): Meshwork's
          // consumer pulls batches of 256.
          maxInFlight: 256,
          maxRetries: 3,
        },
      },
      // The typings mark every option as required, though each has a default.
    } as never) as unknown as Middleware, // @moleculer/channels' typings predate moleculer 0.14.36's Middleware type
  ],
});

broker.createService({
  name: "presence",
  channels: {
    [subject]: {
      group,
      handler(event: UserEvent, raw: JsMsg) {
        const eventId = raw.headers?.get("ce-id");
        if (!eventId) throw new Error("event without ce-id");
        apply(eventId, event);
      },
    },
  },
});

// The broker stops itself on SIGTERM (its own signal handlers drain the adapter).
await broker.start();
process.stdout.write("ready\n");
