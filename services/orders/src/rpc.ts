import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import { requirePrincipal } from "@meshwork/platform";
import {
  GetOrderResponseSchema,
  OrderItemSchema,
  OrderSchema,
  OrdersService,
  OrderState,
  PlaceOrderResponseSchema,
  ShippingAddressSchema,
  type Order,
} from "@meshwork/proto/meshwork/orders/v1/orders_pb.js";
import type { OrderState as State } from "./domain/saga.ts";
import type { Orders } from "./orders.ts";
import type { OrderRecord } from "./store.ts";

const STATES: Record<State, OrderState> = {
  PENDING: OrderState.PENDING,
  PAYMENT_CHARGED: OrderState.PAYMENT_CHARGED,
  CONFIRMED: OrderState.CONFIRMED,
  REFUNDING: OrderState.REFUNDING,
  CANCELLED: OrderState.CANCELLED,
};

/** Thin handlers: the platform has checked the request against its contract rules; shape it for the use case, shape its answer. */
export function ordersRoutes(orders: Orders) {
  return (router: ConnectRouter) =>
    router.service(OrdersService, {
      async placeOrder(req, ctx) {
        // The contract requires shipping_address; the default only satisfies the type.
        const address = req.shippingAddress ?? create(ShippingAddressSchema);
        const order = await orders.place(requirePrincipal(ctx), {
          items: req.items.map((item) => ({ sku: item.sku, quantity: item.quantity, unitPriceCents: Number(item.unitPriceCents) })),
          currency: (req.currency || "EUR").trim().toUpperCase(),
          address: {
            recipient: address.recipient,
            line1: address.line1,
            city: address.city,
            postalCode: address.postalCode,
            countryCode: address.countryCode.trim().toUpperCase(),
          },
        });
        return create(PlaceOrderResponseSchema, { order: toOrder(order) });
      },
      async getOrder(req, ctx) {
        return create(GetOrderResponseSchema, { order: toOrder(await orders.get(requirePrincipal(ctx), req.id)) });
      },
    });
}

function toOrder(order: OrderRecord): Order {
  return create(OrderSchema, {
    id: order.id,
    userId: order.userId,
    items: order.items.map((item) => create(OrderItemSchema, { sku: item.sku, quantity: item.quantity, unitPriceCents: BigInt(item.unitPriceCents) })),
    amountCents: BigInt(order.amountCents),
    currency: order.currency,
    shippingAddress: create(ShippingAddressSchema, order.address),
    state: STATES[order.state],
    paymentId: order.paymentId ?? "",
    shipmentId: order.shipmentId ?? "",
    cancellationReason: order.cancellationReason ?? "",
    createdAt: timestampFromMs(order.createdAt),
    updatedAt: timestampFromMs(order.updatedAt),
  });
}
