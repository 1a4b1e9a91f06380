import { jetstream, type JsMsg } from "@nats-io/jetstream";
import { headers as makeHeaders, type NatsConnection } from "@nats-io/transport-node";
import type { Logger } from "../../logger.ts";
import { eventsDeadLettered } from "../../metrics.ts";
import { MalformedEventError } from "../cloudevents.ts";
import { deadLetterSubject } from "../topology.ts";
import type { ConsumerSpec } from "./spec.ts";

/** What retrying and dead-lettering need to know about a consumer. */
export type RetryPolicy = Pick<ConsumerSpec<unknown>, "name" | "stream" | "maxDeliver" | "backoffMs">;

/**
 * After a failed attempt: a retry with backoff while the message has tries left, else a dead
 * letter with the error and delivery count in its headers, and the consumer moves on. A message
 * that is not a CloudEvent can never succeed, so it goes to DEADLETTER at once.
 */
export async function retryOrDeadLetter(msg: JsMsg, error: Error, spec: RetryPolicy, connection: NatsConnection, log: Logger): Promise<void> {
  const deliveries = msg.info.deliveryCount;
  if (!(error instanceof MalformedEventError) && deliveries < spec.maxDeliver) {
    const delay = spec.backoffMs[Math.min(deliveries - 1, spec.backoffMs.length - 1)] ?? 1_000;
    log.warn({ err: error.message, deliveries, retryInMs: delay, seq: msg.seq }, "event handler failed; will retry");
    msg.nak(delay);
    return;
  }
  try {
    await deadLetter(msg, error, spec, connection);
    msg.term(`dead-lettered: ${oneLine(error.message)}`);
    eventsDeadLettered.add(1, { consumer: spec.name });
    log.error({ err: error.message, deliveries, seq: msg.seq }, "event dead-lettered");
  } catch (publishError) {
    // The dead letter could not be written (NATS trouble): keep the message and try again later.
    log.error({ err: (publishError as Error).message }, "could not dead-letter; will retry");
    msg.nak(spec.backoffMs.at(-1) ?? 5_000);
  }
}

async function deadLetter(msg: JsMsg, error: Error, spec: RetryPolicy, connection: NatsConnection): Promise<void> {
  const headers = makeHeaders();
  for (const [key, values] of msg.headers ?? []) {
    if (key.toLowerCase() === "nats-msg-id") continue;
    for (const value of values) headers.append(key, value);
  }
  headers.set("meshwork-dlq-error", oneLine(`${error.name}: ${error.message}`));
  headers.set("meshwork-dlq-deliveries", String(msg.info.deliveryCount));
  headers.set("meshwork-dlq-stream", spec.stream);
  headers.set("meshwork-dlq-stream-sequence", String(msg.seq));
  headers.set("meshwork-dlq-consumer", spec.name);
  headers.set("meshwork-dlq-subject", msg.subject);
  headers.set("meshwork-dlq-time", new Date().toISOString());
  const eventId = msg.headers?.get("ce-id") || `seq-${msg.seq}`;
  await jetstream(connection).publish(deadLetterSubject(spec.stream, spec.name), msg.data, { headers, msgID: `${eventId}:${spec.name}` });
}

/** JetStream refuses header values with line breaks; stack-like messages are folded onto one line. */
function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " | ").slice(0, 1_000);
}
