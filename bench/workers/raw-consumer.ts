/**
 * The raw JetStream baseline's consumer, a separate process like presence: a durable pull
 * consumer with the platform's settings (explicit ack, deliver all, max_ack_pending 1000,
 * consume() in batches of 256) that acks each message as soon as it arrives. No decoding, no
 * database: what JetStream and the client library cost on their own.
 * Usage: node bench/workers/raw-consumer.ts <nats port> <stream> <durable> <filter subject>
 */
import { AckPolicy, DeliverPolicy, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, nanos } from "@nats-io/transport-node";

const [port, stream, durable, filter] = process.argv.slice(2);
if (!port || !stream || !durable || !filter) throw new Error("usage: raw-consumer.ts <nats port> <stream> <durable> <filter subject>");
const connection = await connect({ servers: `127.0.0.1:${port}`, name: "bench-raw-consumer" });
const jsm = await jetstreamManager(connection);
await jsm.consumers.add(stream, {
  durable_name: durable,
  ack_policy: AckPolicy.Explicit,
  deliver_policy: DeliverPolicy.All,
  filter_subjects: [filter],
  ack_wait: nanos(30_000),
  max_deliver: -1,
  max_ack_pending: 1_000,
});
const consumer = await jetstream(connection).consumers.get(stream, durable);
const messages = await consumer.consume({ max_messages: 256 });
process.stdout.write("ready\n");
process.once("SIGTERM", () => void messages.close().then(() => connection.close()).then(() => process.exit(0)));
for await (const msg of messages) msg.ack();
