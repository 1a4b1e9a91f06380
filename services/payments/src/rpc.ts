import { create } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import type { ConnectRouter } from "@connectrpc/connect";
import {
  ChargeResponseSchema,
  PaymentSchema,
  PaymentsService,
  PaymentState,
  RefundResponseSchema,
  type Payment,
} from "@meshwork/proto/meshwork/payments/v1/payments_pb.js";
import type { PaymentRecord } from "./domain/charges.ts";
import type { Payments } from "./payments.ts";

/** Thin handlers: the platform has checked the request against its contract rules; shape it for the use case, shape its answer. */
export function paymentsRoutes(payments: Payments) {
  return (router: ConnectRouter) =>
    router.service(PaymentsService, {
      async charge(req) {
        const payment = await payments.charge({
          idempotencyKey: req.idempotencyKey,
          orderId: req.orderId,
          userId: req.userId,
          amountCents: Number(req.amountCents),
          currency: req.currency,
        });
        return create(ChargeResponseSchema, { payment: toPayment(payment) });
      },
      async refund(req) {
        const payment = await payments.refund({ idempotencyKey: req.idempotencyKey, paymentId: req.paymentId, reason: req.reason });
        return create(RefundResponseSchema, { payment: toPayment(payment) });
      },
    });
}

function toPayment(payment: PaymentRecord): Payment {
  return create(PaymentSchema, {
    id: payment.id,
    orderId: payment.orderId,
    userId: payment.userId,
    amountCents: BigInt(payment.amountCents),
    currency: payment.currency,
    state: payment.state === "REFUNDED" ? PaymentState.REFUNDED : PaymentState.CHARGED,
    chargedAt: timestampFromMs(payment.chargedAt),
    refundedAt: payment.refundedAt === null ? undefined : timestampFromMs(payment.refundedAt),
  });
}
