import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { FailedPreconditionError, NotFoundError, uuidv7, type Principal, type ServiceContext } from "@meshwork/platform";
import { OrderEvent_PlacedSchema } from "@meshwork/proto/meshwork/orders/v1/events_pb.js";
import { context, propagation } from "@opentelemetry/api";
import type { OrdersConfig } from "./config.ts";
import { validateOrder, type NewOrder } from "./domain/order.ts";
import { orderEvents } from "./events.ts";
import { findOrder, insertOrder, isAccountClosing, type OrderRecord, type OrdersTables } from "./store.ts";

/** orders' use cases. Placing an order commits it in PENDING with its event; the saga runner takes it from there. */
export class Orders {
  private readonly context: ServiceContext<OrdersTables, OrdersConfig>;
  private readonly sagaWaiting: () => void;

  constructor(serviceContext: ServiceContext<OrdersTables, OrdersConfig>, sagaWaiting: () => void) {
    this.context = serviceContext;
    this.sagaWaiting = sagaWaiting;
  }

  async place(principal: Principal, input: NewOrder): Promise<OrderRecord> {
    const { amountCents } = validateOrder(input);
    const carrier: Record<string, string> = {};
    propagation.inject(context.active(), carrier);
    const at = Date.now();
    const order: OrderRecord = {
      id: uuidv7(),
      userId: principal.userId,
      items: input.items,
      amountCents,
      currency: input.currency,
      address: input.address,
      state: "PENDING",
      paymentId: null,
      shipmentId: null,
      cancellationReason: null,
      attempts: 0,
      traceparent: carrier["traceparent"] ?? null,
      createdAt: at,
      updatedAt: at,
    };
    await this.context.unitOfWork(async (trx) => {
      if (await isAccountClosing(trx, order.userId)) throw new FailedPreconditionError("the account is being closed: no order may be placed for it");
      await insertOrder(trx, order);
      await orderEvents.emit(trx, order.id, {
        case: "placed",
        value: create(OrderEvent_PlacedSchema, {
          orderId: order.id,
          userId: order.userId,
          amountCents: BigInt(amountCents),
          currency: order.currency,
          countryCode: order.address.countryCode,
          occurredAt: timestampNow(),
        }),
      });
    });
    this.context.log.info({ orderId: order.id, userId: order.userId, amountCents }, "order placed");
    this.sagaWaiting();
    return order;
  }

  /** Its owner or an admin; anyone else is told it does not exist, so order ids cannot be probed. */
  async get(principal: Principal, id: string): Promise<OrderRecord> {
    const order = id ? await findOrder(this.context.database.db, id) : undefined;
    if (!order || (order.userId !== principal.userId && !principal.roles.includes("admin"))) throw new NotFoundError("no such order");
    return order;
  }
}
