import type { PlatformTables } from "@meshwork/platform";
import type { Kysely, Transaction } from "kysely";
import type { PaymentRecord, PaymentState } from "./domain/charges.ts";
import * as payments from "./migrations/0001_payments.ts";

export const migrations = { "0001_payments": payments };

export interface PaymentsTables {
  payments: {
    id: string;
    charge_key: string;
    order_id: string;
    user_id: string;
    amount_cents: number;
    currency: string;
    state: string;
    charged_at: number;
    refund_key: string | null;
    refund_reason: string | null;
    refunded_at: number | null;
  };
}

export type PaymentsDatabase = PaymentsTables & PlatformTables;
type Db = Kysely<PaymentsDatabase> | Transaction<PaymentsDatabase>;

/** The only module that speaks SQL for payments. */
export async function findByChargeKey(db: Db, key: string): Promise<PaymentRecord | undefined> {
  const row = await db.selectFrom("payments").selectAll().where("charge_key", "=", key).executeTakeFirst();
  return row && toPayment(row);
}

export async function findById(db: Db, id: string): Promise<PaymentRecord | undefined> {
  const row = await db.selectFrom("payments").selectAll().where("id", "=", id).executeTakeFirst();
  return row && toPayment(row);
}

/** Inserts a charge; false when its key is already taken (the unique index decides). */
export async function insertPayment(db: Db, payment: PaymentRecord): Promise<boolean> {
  const result = await db
    .insertInto("payments")
    .values({
      id: payment.id,
      charge_key: payment.chargeKey,
      order_id: payment.orderId,
      user_id: payment.userId,
      amount_cents: payment.amountCents,
      currency: payment.currency,
      state: payment.state,
      charged_at: payment.chargedAt,
      refund_key: null,
      refund_reason: null,
      refunded_at: null,
    })
    .onConflict((conflict) => conflict.column("charge_key").doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

/** CHARGED -> REFUNDED; false when it was not CHARGED any more (refunded by an earlier try). */
export async function markRefunded(db: Db, id: string, refund: { key: string; reason: string; at: number }): Promise<boolean> {
  const result = await db
    .updateTable("payments")
    .set({ state: "REFUNDED", refund_key: refund.key, refund_reason: refund.reason, refunded_at: refund.at })
    .where("id", "=", id)
    .where("state", "=", "CHARGED")
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

function toPayment(row: PaymentsTables["payments"]): PaymentRecord {
  return {
    id: row.id,
    chargeKey: row.charge_key,
    orderId: row.order_id,
    userId: row.user_id,
    amountCents: Number(row.amount_cents),
    currency: row.currency,
    state: row.state as PaymentState,
    chargedAt: Number(row.charged_at),
    refundKey: row.refund_key,
    refundReason: row.refund_reason,
    refundedAt: row.refunded_at === null ? null : Number(row.refunded_at),
  };
}
