import { eventEmitter, type StreamSpec } from "@meshwork/platform";
import { OrderEventSchema } from "@meshwork/proto/meshwork/orders/v1/events_pb.js";

/** orders publishes; it consumes nothing (its saga is orchestrated over RPC, see docs/saga.md). */
export const ORDERS_STREAM: StreamSpec = {
  name: "ORDERS",
  subjects: ["orders.>"],
  duplicateWindowMs: 2 * 60_000,
};

/** The subject of each OrderEvent variant; `orderEvents.emit` enqueues one in the caller's transaction (the outbox). */
export const orderEvents = eventEmitter(OrderEventSchema, {
  placed: "orders.v1.order.placed",
  confirmed: "orders.v1.order.confirmed",
  cancelled: "orders.v1.order.cancelled",
});
