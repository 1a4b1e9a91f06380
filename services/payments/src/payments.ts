import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import { NotFoundError, uuidv7, type ServiceContext } from "@meshwork/platform";
import { PaymentEvent_ChargedSchema, PaymentEvent_RefundedSchema } from "@meshwork/proto/meshwork/payments/v1/events_pb.js";
import type { PaymentsConfig } from "./config.ts";
import { assertSameCharge, declineReason, PaymentDeclinedError, type ChargeInput, type PaymentRecord } from "./domain/charges.ts";
import { paymentEvents } from "./events.ts";
import { findByChargeKey, findById, insertPayment, markRefunded, type PaymentsTables } from "./store.ts";

/**
 * payments' use cases. Both are idempotent: the charge by its key (a unique index), the refund by
 * the payment's state (CHARGED -> REFUNDED happens once). Each state change commits with its event.
 */
export class Payments {
  private readonly context: ServiceContext<PaymentsTables, PaymentsConfig>;

  constructor(context: ServiceContext<PaymentsTables, PaymentsConfig>) {
    this.context = context;
  }

  async charge(input: ChargeInput): Promise<PaymentRecord> {
    const { db } = this.context.database;
    const existing = await findByChargeKey(db, input.idempotencyKey);
    if (existing) {
      assertSameCharge(existing, input);
      return existing;
    }
    const reason = declineReason(input, this.context.config.PAYMENTS_DECLINE_ABOVE_CENTS);
    if (reason) throw new PaymentDeclinedError(reason);
    const payment: PaymentRecord = {
      id: uuidv7(),
      chargeKey: input.idempotencyKey,
      orderId: input.orderId,
      userId: input.userId,
      amountCents: input.amountCents,
      currency: input.currency,
      state: "CHARGED",
      chargedAt: Date.now(),
      refundKey: null,
      refundReason: null,
      refundedAt: null,
    };
    await this.context.unitOfWork(async (trx) => {
      // A concurrent retry with the same key may have won the insert: then it emitted the event.
      if (!(await insertPayment(trx, payment))) return;
      await paymentEvents.emit(trx, payment.id, {
        case: "charged",
        value: create(PaymentEvent_ChargedSchema, {
          paymentId: payment.id,
          orderId: payment.orderId,
          userId: payment.userId,
          amountCents: BigInt(payment.amountCents),
          currency: payment.currency,
          occurredAt: timestampNow(),
        }),
      });
      this.context.log.info({ paymentId: payment.id, orderId: payment.orderId, amountCents: payment.amountCents }, "charged");
    });
    const stored = (await findByChargeKey(db, input.idempotencyKey))!;
    assertSameCharge(stored, input);
    return stored;
  }

  async refund(input: { idempotencyKey: string; paymentId: string; reason: string }): Promise<PaymentRecord> {
    const { db } = this.context.database;
    const payment = await findById(db, input.paymentId);
    if (!payment) throw new NotFoundError("no such payment");
    if (payment.state === "REFUNDED") return payment;
    await this.context.unitOfWork(async (trx) => {
      const at = Date.now();
      if (!(await markRefunded(trx, payment.id, { key: input.idempotencyKey, reason: input.reason, at }))) return;
      await paymentEvents.emit(trx, payment.id, {
        case: "refunded",
        value: create(PaymentEvent_RefundedSchema, {
          paymentId: payment.id,
          orderId: payment.orderId,
          userId: payment.userId,
          amountCents: BigInt(payment.amountCents),
          currency: payment.currency,
          reason: input.reason,
          occurredAt: timestampNow(),
        }),
      });
      this.context.log.info({ paymentId: payment.id, orderId: payment.orderId }, "refunded");
    });
    return (await findById(db, payment.id))!;
  }
}
