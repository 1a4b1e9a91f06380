import type { PlatformTables } from "@meshwork/platform";
import type { Kysely, Transaction } from "kysely";
import type { OrderItem, ShippingAddress } from "./domain/order.ts";
import type { OrderState } from "./domain/saga.ts";
import * as orders from "./migrations/0001_orders.ts";
import * as closingAccounts from "./migrations/0002_closing_accounts.ts";

export const migrations = { "0001_orders": orders, "0002_closing_accounts": closingAccounts };

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
    /** 1 once the order's account is closing: its saga withdraws it (domain/saga.ts `withdraw`). */
    withdrawn: number;
  };
  closing_accounts: {
    user_id: string;
    requested_at: number;
    orders_withdrawn: number;
    reported_at: number | null;
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
  withdrawn?: boolean;
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
      withdrawn: 0,
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
    withdrawn: Number(row.withdrawn) === 1,
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

export async function isAccountClosing(db: Db, userId: string): Promise<boolean> {
  return (await db.selectFrom("closing_accounts").select("user_id").where("user_id", "=", userId).executeTakeFirst()) !== undefined;
}

/**
 * Records that `userId`'s account is closing and marks its unfinished orders withdrawn, due now;
 * the number withdrawn, or undefined when the closure was already recorded (a redelivery).
 */
export async function startAccountClosure(db: Db, userId: string, at: number): Promise<number | undefined> {
  const inserted = await db
    .insertInto("closing_accounts")
    .values({ user_id: userId, requested_at: at, orders_withdrawn: 0, reported_at: null })
    .onConflict((conflict) => conflict.column("user_id").doNothing())
    .executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) !== 1) return undefined;
  const withdrawn = await db
    .updateTable("orders")
    .set({ withdrawn: 1, next_attempt_at: at })
    .where("user_id", "=", userId)
    .where("state", "in", UNFINISHED)
    .executeTakeFirst();
  const count = Number(withdrawn.numUpdatedRows);
  await db.updateTable("closing_accounts").set({ orders_withdrawn: count }).where("user_id", "=", userId).execute();
  return count;
}

/**
 * Marks a closing account reported once none of its orders is unfinished; the number of orders
 * withdrawn when this call did so, undefined when it is not closing, still has open orders, or
 * was reported already.
 */
export async function reportAccountClosedIfDone(db: Db, userId: string, at: number): Promise<number | undefined> {
  const closing = await db.selectFrom("closing_accounts").selectAll().where("user_id", "=", userId).where("reported_at", "is", null).executeTakeFirst();
  if (!closing) return undefined;
  const open = await db.selectFrom("orders").select("id").where("user_id", "=", userId).where("state", "in", UNFINISHED).limit(1).executeTakeFirst();
  if (open) return undefined;
  const reported = await db.updateTable("closing_accounts").set({ reported_at: at }).where("user_id", "=", userId).where("reported_at", "is", null).executeTakeFirst();
  return Number(reported.numUpdatedRows) === 1 ? Number(closing.orders_withdrawn) : undefined;
}
