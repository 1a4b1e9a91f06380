import { defineVariantConsumer, eventEmitter, type StreamSpec } from "@meshwork/platform";
import { UserEventSchema } from "@meshwork/proto/meshwork/identity/v1/events_pb.js";
import { OrderEventSchema } from "@meshwork/proto/meshwork/orders/v1/events_pb.js";
import type { Transaction } from "kysely";
import type { OrdersDatabase } from "./store.ts";

/**
 * orders publishes its orders' events. Its saga is orchestrated over RPC (docs/saga.md); the one
 * event it consumes is identity's AccountClosureRequested (choreography, docs/decisions/composition.md).
 */
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
  accountOrdersClosed: "orders.v1.account.orders_closed",
});

export function ordersConsumers(onAccountClosure: (trx: Transaction<OrdersDatabase>, userId: string) => Promise<void>) {
  return [
    defineVariantConsumer({
      name: "orders-account-closure",
      stream: "IDENTITY",
      subject: "identity.v1.user.account_closure_requested",
      schema: UserEventSchema,
      variant: "accountClosureRequested",
      maxDeliver: 10,
      handle: (request, trx: Transaction<OrdersDatabase>) => onAccountClosure(trx, request.userId),
    }),
  ];
}
