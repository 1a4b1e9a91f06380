import { create, type Message, type MessageInitShape } from "@bufbuild/protobuf";
import type { GenMessage } from "@bufbuild/protobuf/codegenv2";
import type { Transaction } from "kysely";
import type { PlatformTables } from "../db/database.ts";
import { enqueueEvent } from "./outbox.ts";

/** A domain's event message: one oneof `event` with a variant per thing that happened. */
export type EventEnvelopeMessage = Message & { event: { case: string | undefined; value?: unknown } };

type Variant<M extends EventEnvelopeMessage> = NonNullable<M["event"]["case"]>;

/**
 * What a publishing service needs from its events.ts: its subjects, one per variant, and an
 * `emit` that enqueues a variant in the caller's transaction (the outbox), about one aggregate,
 * for the relay to publish after the commit.
 */
export interface EventEmitter<M extends EventEnvelopeMessage> {
  subjects: Readonly<Record<Variant<M>, string>>;
  emit<T extends PlatformTables>(trx: Transaction<T>, aggregateId: string, event: M["event"]): Promise<string>;
}

export function eventEmitter<M extends EventEnvelopeMessage>(schema: GenMessage<M>, subjects: Record<Variant<M>, string>): EventEmitter<M> {
  return {
    subjects,
    emit(trx, aggregateId, event) {
      if (!event.case) throw new Error(`a ${schema.typeName} needs a variant`);
      return enqueueEvent(trx, {
        subject: subjects[event.case as Variant<M>],
        schema,
        message: create(schema, { event } as MessageInitShape<GenMessage<M>>),
        aggregateId,
      });
    },
  };
}
