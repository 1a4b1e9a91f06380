import { fromBinary, type DescMessage, type MessageShape } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import type { Transaction } from "kysely";
import type { PlatformTables } from "../../db/database.ts";
import type { EventEnvelope } from "../cloudevents.ts";
import type { EventEnvelopeMessage } from "../emitter.ts";

/** An event as a handler sees it: the CloudEvents envelope, the raw body and where it sits in the stream. */
export interface RawEvent extends EventEnvelope {
  data: Uint8Array;
  traceId: string;
  streamSequence: number;
}

/** An event whose body the consumer decoded with its schema. */
export interface ReceivedEvent<M> extends RawEvent {
  message: M;
}

interface ConsumerOptions {
  /** Durable name: `<service>-<purpose>`. */
  name: string;
  stream: string;
  filterSubjects: string[];
  /** Tries before the message goes to DEADLETTER. */
  maxDeliver?: number;
  /** Delay before each retry; the last value repeats. */
  backoffMs?: number[];
}

/** A consumer that decodes each body with `schema` into `event.message`. */
export interface DecodingConsumer<Tables, Desc extends DescMessage> extends ConsumerOptions {
  schema: Desc;
  handle(event: ReceivedEvent<MessageShape<Desc>>, trx: Transaction<Tables & PlatformTables>): Promise<void>;
}

/** A consumer that keeps the raw bytes (audit stores every event as received). */
export interface RawConsumer<Tables> extends ConsumerOptions {
  schema?: undefined;
  handle(event: RawEvent, trx: Transaction<Tables & PlatformTables>): Promise<void>;
}

/**
 * A durable consumer as the platform runs it. `handle` runs inside the database transaction that
 * also records the event id, so a redelivered event is never applied twice.
 */
export interface ConsumerSpec<Tables> extends Required<ConsumerOptions> {
  decode(data: Uint8Array): unknown;
  handle(event: ReceivedEvent<unknown>, trx: Transaction<Tables & PlatformTables>): Promise<void>;
}

/** Declares a consumer in a service's events.ts: with a schema its handler gets decoded messages. */
export function defineConsumer<Tables, Desc extends DescMessage>(spec: DecodingConsumer<Tables, Desc>): ConsumerSpec<Tables>;
export function defineConsumer<Tables>(spec: RawConsumer<Tables>): ConsumerSpec<Tables>;
export function defineConsumer<Tables, Desc extends DescMessage>(spec: DecodingConsumer<Tables, Desc> | RawConsumer<Tables>): ConsumerSpec<Tables> {
  const options = { maxDeliver: 5, backoffMs: [200, 1_000, 5_000], ...spec };
  if (spec.schema === undefined) {
    const raw = spec as RawConsumer<Tables>;
    return { ...options, decode: () => undefined, handle: (event, trx) => raw.handle(event, trx) };
  }
  const { schema, handle } = spec as DecodingConsumer<Tables, Desc>;
  return { ...options, decode: (data) => fromBinary(schema, data), handle: (event, trx) => handle(event as ReceivedEvent<MessageShape<Desc>>, trx) };
}

type VariantCase<M extends EventEnvelopeMessage> = NonNullable<M["event"]["case"]>;
type VariantValue<M extends EventEnvelopeMessage, C> = Extract<M["event"], { case: C }>["value"];

/** A consumer of one variant of a domain's events, read from that variant's own subject. */
export interface VariantConsumer<Tables, M extends EventEnvelopeMessage, C extends VariantCase<M>> extends Omit<ConsumerOptions, "filterSubjects"> {
  schema: GenMessage<M>;
  /** The producer's subject for the variant (only those messages are delivered). */
  subject: string;
  variant: C;
  handle(value: VariantValue<M, C>, trx: Transaction<Tables & PlatformTables>, event: ReceivedEvent<M>): Promise<void>;
}

/**
 * Most reactions are to one thing that happened: this consumer reads one variant of a domain's
 * event envelope (its oneof `event`) and hands the handler that variant's value. Anything else on
 * the subject (a producer's mistake) is acknowledged and ignored.
 */
export function defineVariantConsumer<Tables, M extends EventEnvelopeMessage, C extends VariantCase<M>>(spec: VariantConsumer<Tables, M, C>): ConsumerSpec<Tables> {
  const { subject, variant, handle, ...options } = spec;
  return defineConsumer<Tables, GenMessage<M>>({
    ...options,
    filterSubjects: [subject],
    handle: async (event, trx) => {
      const received = event as ReceivedEvent<M>;
      if (received.message.event.case === variant) await handle(received.message.event.value as VariantValue<M, C>, trx, received);
    },
  });
}
