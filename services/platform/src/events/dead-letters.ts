import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { headers as makeHeaders, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { DEADLETTER_STREAM } from "./topology.ts";

export interface DeadLetter {
  sequence: number;
  eventId: string;
  type: string;
  consumer: string;
  stream: string;
  originalSubject: string;
  error: string;
  deliveries: number;
  deadLetteredAt: string;
}

/** Dead letters, oldest first, optionally of one consumer. */
export async function listDeadLetters(connection: NatsConnection, consumer?: string): Promise<DeadLetter[]> {
  const jsm = await jetstreamManager(connection);
  const info = await jsm.streams.info(DEADLETTER_STREAM.name).catch(() => undefined);
  if (!info || info.state.messages === 0) return [];
  const letters: DeadLetter[] = [];
  for (let sequence = info.state.first_seq; sequence <= info.state.last_seq; sequence++) {
    const message = await jsm.streams.getMessage(DEADLETTER_STREAM.name, { seq: sequence }).catch(() => null);
    if (!message) continue;
    const letter = deadLetterFrom(sequence, message.header);
    if (!consumer || letter.consumer === consumer) letters.push(letter);
  }
  return letters;
}

/**
 * Puts a dead letter back on its original subject with its original CloudEvents headers, then
 * removes it from DEADLETTER. Every consumer of that subject sees it again; those that handled it
 * before skip it by its event id, so only the consumer that failed applies it, once.
 */
export async function replayDeadLetter(connection: NatsConnection, sequence: number): Promise<DeadLetter> {
  const jsm = await jetstreamManager(connection);
  const message = await jsm.streams.getMessage(DEADLETTER_STREAM.name, { seq: sequence });
  if (!message) throw new Error(`no dead letter at sequence ${sequence}`);
  const letter = deadLetterFrom(sequence, message.header);
  const headers = makeHeaders();
  for (const [key, values] of message.header) {
    if (key.toLowerCase().startsWith("meshwork-dlq-") || key.toLowerCase().startsWith("nats-")) continue;
    for (const value of values) headers.append(key, value);
  }
  // A fresh de-duplication id: the original one may still be inside the stream's window.
  await jetstream(connection).publish(letter.originalSubject, message.data, { headers, msgID: `${letter.eventId}:replay:${sequence}` });
  await jsm.streams.deleteMessage(DEADLETTER_STREAM.name, sequence);
  return letter;
}

/** A dead letter as its headers describe it (consumer/dead-lettering.ts writes them). */
function deadLetterFrom(sequence: number, headers: MsgHdrs): DeadLetter {
  const header = (name: string) => headers.get(name) ?? "";
  return {
    sequence,
    eventId: header("ce-id"),
    type: header("ce-type"),
    consumer: header("meshwork-dlq-consumer"),
    stream: header("meshwork-dlq-stream"),
    originalSubject: header("meshwork-dlq-subject"),
    error: header("meshwork-dlq-error"),
    deliveries: Number(header("meshwork-dlq-deliveries")),
    deadLetteredAt: header("meshwork-dlq-time"),
  };
}
