import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { createServiceClient } from "@meshwork/platform";
import { PaymentsService } from "@meshwork/proto/meshwork/payments/v1/payments_pb.js";
import { ShippingService } from "@meshwork/proto/meshwork/shipping/v1/shipping_pb.js";
import { idempotencyKey, type Step, type StepOutcome } from "./domain/saga.ts";
import type { ServiceToken } from "./service-token.ts";
import type { OrderRecord } from "./store.ts";

/** The side of the saga that talks to other services: one call per step, its answer as an outcome. */
export interface SagaSteps {
  run(step: Step, order: OrderRecord): Promise<StepOutcome>;
}

export interface RpcStepsOptions {
  paymentsUrl: string;
  shippingUrl: string;
  token: ServiceToken;
  timeoutMs: number;
}

/** Codes that are a definitive answer about the request itself: retrying it would get the same. */
const REJECTIONS = new Set([Code.FailedPrecondition, Code.InvalidArgument, Code.OutOfRange]);

/** payments and shipping over gRPC, each call carrying orders' service token and the step's idempotency key. */
export function rpcSteps(options: RpcStepsOptions): SagaSteps {
  const payments = createServiceClient(PaymentsService, options.paymentsUrl, [bearer(options.token)]);
  const shipping = createServiceClient(ShippingService, options.shippingUrl, [bearer(options.token)]);
  const call = { timeoutMs: options.timeoutMs };

  const steps: Record<Step, (order: OrderRecord) => Promise<StepOutcome>> = {
    async charge(order) {
      const { payment } = await payments.charge(
        {
          idempotencyKey: idempotencyKey(order.id, "charge"),
          orderId: order.id,
          userId: order.userId,
          amountCents: BigInt(order.amountCents),
          currency: order.currency,
        },
        call,
      );
      return { kind: "succeeded", paymentId: payment!.id };
    },
    async ship(order) {
      const { shipment } = await shipping.createShipment(
        { idempotencyKey: idempotencyKey(order.id, "ship"), orderId: order.id, userId: order.userId, address: order.address },
        call,
      );
      return { kind: "succeeded", shipmentId: shipment!.id };
    },
    async refund(order) {
      await payments.refund({ idempotencyKey: idempotencyKey(order.id, "refund"), paymentId: order.paymentId ?? "", reason: order.cancellationReason ?? "" }, call);
      return { kind: "succeeded" };
    },
  };

  return {
    async run(step, order) {
      try {
        return await steps[step](order);
      } catch (error) {
        const connectError = ConnectError.from(error);
        if (REJECTIONS.has(connectError.code)) return { kind: "rejected", reason: connectError.rawMessage };
        return { kind: "failed", error: `${Code[connectError.code] ?? "unknown"}: ${connectError.rawMessage}` };
      }
    },
  };
}

function bearer(token: ServiceToken): Interceptor {
  return (next) => async (req) => {
    req.header.set("authorization", `Bearer ${await token.get()}`);
    try {
      return await next(req);
    } catch (error) {
      if (error instanceof ConnectError && error.code === Code.Unauthenticated) token.invalidate();
      throw error;
    }
  };
}
