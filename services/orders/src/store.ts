import type { PlatformTables } from "@meshwork/platform";
import type { Kysely, Transaction } from "kysely";
import type { OrderItem, ShippingAddress } from "./domain/order.ts";
import type { OrderState } from "./domain/saga.ts";
import * as orders from "./migrations/0001_orders.ts";

export const migrations = { "0001_orders": orders };

const UNFINISHED: OrderState[] = ["PENDING", "PAYMENT_CHARGED", "REFUNDING"];

export interface OrdersTables {
  orders: {
    id: string;
    user_id: string;
    /** JSON: text, so the column is the same in SQLite and PostgreSQL. */
    items: string;
    amount_cents: number;
    currency: string;
    address: string;
    state: string;
    payment_id: string | null;
    shipment_id: string | null;
    cancellation_reason: string | null;
    attempts: number;
    next_attempt_at: number;
    lease_until: number | null;
    last_error: string | null;
    traceparent: string | null;
    created_at: number;
    updated_at: number;
  };
}

export interface OrderRecord {
  id: string;
  userId: string;
  items: OrderItem[];
  amountCents: number;
  currency: string;
  address: ShippingAddress;
  state: OrderState;
  paymentId: string | null;
  shipmentId: string | null;
  cancellationReason: string | null;
  attempts: number;
  traceparent: string | null;
  createdAt: number;
  updatedAt: number;
}

export type OrdersDatabase = OrdersTables & PlatformTables;
type Db = Kysely<OrdersDatabase> | Transaction<OrdersDatabase>;

/** The only module that speaks SQL for orders. */
export async function insertOrder(db: Db, order: OrderRecord): Promise<void> {
  await db
    .insertInto("orders")
    .values({
      id: order.id,
      user_id: order.userId,
      items: JSON.stringify(order.items),
      amount_cents: order.amountCents,
      currency: order.currency,
      address: JSON.stringify(order.address),
      state: order.state,
      payment_id: null,
      shipment_id: null,
      cancellation_reason: null,
      attempts: 0,
      next_attempt_at: order.createdAt,
      lease_until: null,
      last_error: null,
      traceparent: order.traceparent,
      created_at: order.createdAt,
      updated_at: order.updatedAt,
    })
    .execute();
}

export async function findOrder(db: Db, id: string): Promise<OrderRecord | undefined> {
  const row = await db.selectFrom("orders").selectAll().where("id", "=", id).executeTakeFirst();
  return row && toOrder(row);
}

/** Unfinished sagas whose next try is due and that no live runner holds, oldest first. */
export async function dueSagas(db: Db, now: number, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom("orders")
    .select("id")
    .where("state", "in", UNFINISHED)
    .where("next_attempt_at", "<=", now)
    .where((eb) => eb.or([eb("lease_until", "is", null), eb("lease_until", "<", now)]))
    .orderBy("created_at")
    .limit(limit)
    .execute();
  return rows.map((row) => row.id);
}

/** Takes the lease on a saga; false when another runner holds it. */
export async function claimSaga(db: Db, id: string, now: number, leaseUntil: number): Promise<boolean> {
  const result = await db
    .updateTable("orders")
    .set({ lease_until: leaseUntil })
    .where("id", "=", id)
    .where((eb) => eb.or([eb("lease_until", "is", null), eb("lease_until", "<", now)]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function renewLease(db: Db, id: string, leaseUntil: number): Promise<void> {
  await db.updateTable("orders").set({ lease_until: leaseUntil }).where("id", "=", id).execute();
}

export async function releaseSaga(db: Db, id: string): Promise<void> {
  await db.updateTable("orders").set({ lease_until: null }).where("id", "=", id).execute();
}

/**
 * Moves a saga from `from` to its next state; false when it is no longer in `from` (another runner
 * got there first), so a transition and its event are applied once.
 */
export async function transitionOrder(
  db: Db,
  id: string,
  from: OrderState,
  to: { state: OrderState; paymentId: string | null; shipmentId: string | null; cancellationReason: string | null; at: number },
): Promise<boolean> {
  const result = await db
    .updateTable("orders")
    .set({
      state: to.state,
      payment_id: to.paymentId,
      shipment_id: to.shipmentId,
      cancellation_reason: to.cancellationReason,
      attempts: 0,
      next_attempt_at: to.at,
      last_error: null,
      updated_at: to.at,
    })
    .where("id", "=", id)
    .where("state", "=", from)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

export async function scheduleRetry(db: Db, id: string, retry: { attempts: number; nextAttemptAt: number; error: string }): Promise<void> {
  await db
    .updateTable("orders")
    .set({ attempts: retry.attempts, next_attempt_at: retry.nextAttemptAt, last_error: retry.error.slice(0, 500), lease_until: null })
    .where("id", "=", id)
    .execute();
}

function toOrder(row: OrdersTables["orders"]): OrderRecord {
  return {
    id: row.id,
    userId: row.user_id,
    items: JSON.parse(row.items) as OrderItem[],
    amountCents: Number(row.amount_cents),
    currency: row.currency,
    address: JSON.parse(row.address) as ShippingAddress,
    state: row.state as OrderState,
    paymentId: row.payment_id,
    shipmentId: row.shipment_id,
    cancellationReason: row.cancellation_reason,
    attempts: Number(row.attempts),
    traceparent: row.traceparent,
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** How many orders stand in each state (for the saga-state gauge). */
export async function countByState(db: Db): Promise<Map<OrderState, number>> {
  const rows = await db.selectFrom("orders").select(["state", (eb) => eb.fn.countAll<number>().as("count")]).groupBy("state").execute();
  return new Map(rows.map((row) => [row.state as OrderState, Number(row.count)]));
}

/** When the unfinished saga that moved least recently last moved, or undefined when none is open. */
export async function oldestOpenSagaUpdatedAt(db: Db): Promise<number | undefined> {
  const row = await db.selectFrom("orders").select((eb) => eb.fn.min<number>("updated_at").as("oldest")).where("state", "in", UNFINISHED).executeTakeFirst();
  return row?.oldest === null || row?.oldest === undefined ? undefined : Number(row.oldest);
}
