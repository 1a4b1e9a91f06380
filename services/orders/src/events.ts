import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { enqueueEvent, type PlatformTables, type StreamSpec } from "@meshwork/platform";
import { OrderEventSchema, type OrderEvent } from "@meshwork/proto/meshwork/orders/v1/events_pb.js";
import type { Transaction } from "kysely";

/** orders publishes; it consumes nothing (its saga is orchestrated over RPC, see docs/saga.md). */
export const ORDERS_STREAM: StreamSpec = {
  name: "ORDERS",
  subjects: ["orders.>"],
  duplicateWindowMs: 2 * 60_000,
};

export const subjects = {
  placed: "orders.v1.order.placed",
  confirmed: "orders.v1.order.confirmed",
  cancelled: "orders.v1.order.cancelled",
} as const;

type Variant = NonNullable<OrderEvent["event"]["case"]>;

/** Enqueues an OrderEvent in the caller's transaction (the outbox); the relay publishes it after commit. */
export function emitOrderEvent<T extends PlatformTables>(trx: Transaction<T>, orderId: string, event: OrderEvent["event"]): Promise<string> {
  if (!event.case) throw new Error("an OrderEvent needs a variant");
  return enqueueEvent(trx, {
    subject: subjects[event.case satisfies Variant],
    schema: OrderEventSchema,
    message: create(OrderEventSchema, { event }),
    aggregateId: orderId,
  });
}

export const now = () => timestampFromMs(Date.now());
