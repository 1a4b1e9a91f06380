import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { enqueueEvent, type PlatformTables, type StreamSpec } from "@meshwork/platform";
import { PaymentEventSchema, type PaymentEvent } from "@meshwork/proto/meshwork/payments/v1/events_pb.js";
import type { Transaction } from "kysely";

/** payments publishes; it consumes nothing. One stream for the domain, one subject per variant. */
export const PAYMENTS_STREAM: StreamSpec = {
  name: "PAYMENTS",
  subjects: ["payments.>"],
  duplicateWindowMs: 2 * 60_000,
};

export const subjects = {
  charged: "payments.v1.payment.charged",
  refunded: "payments.v1.payment.refunded",
} as const;

type Variant = NonNullable<PaymentEvent["event"]["case"]>;

/** Enqueues a PaymentEvent in the caller's transaction (the outbox); the relay publishes it after commit. */
export function emitPaymentEvent<T extends PlatformTables>(trx: Transaction<T>, paymentId: string, event: PaymentEvent["event"]): Promise<string> {
  if (!event.case) throw new Error("a PaymentEvent needs a variant");
  return enqueueEvent(trx, {
    subject: subjects[event.case satisfies Variant],
    schema: PaymentEventSchema,
    message: create(PaymentEventSchema, { event }),
    aggregateId: paymentId,
  });
}

export const now = () => timestampFromMs(Date.now());
