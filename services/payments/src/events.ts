import { eventEmitter, type StreamSpec } from "@meshwork/platform";
import { PaymentEventSchema } from "@meshwork/proto/meshwork/payments/v1/events_pb.js";

/** payments publishes; it consumes nothing. One stream for the domain, one subject per variant. */
export const PAYMENTS_STREAM: StreamSpec = {
  name: "PAYMENTS",
  subjects: ["payments.>"],
  duplicateWindowMs: 2 * 60_000,
};

/** The subject of each PaymentEvent variant; `paymentEvents.emit` enqueues one in the caller's transaction (the outbox). */
export const paymentEvents = eventEmitter(PaymentEventSchema, {
  charged: "payments.v1.payment.charged",
  refunded: "payments.v1.payment.refunded",
});
