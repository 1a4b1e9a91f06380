import type { Kysely } from "kysely";

/** One row per order, which is also its saga's durable state. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("orders")
    .addColumn("id", "text", (column) => column.primaryKey())
    .addColumn("user_id", "text", (column) => column.notNull())
    .addColumn("items", "text", (column) => column.notNull())
    .addColumn("amount_cents", "bigint", (column) => column.notNull())
    .addColumn("currency", "text", (column) => column.notNull())
    .addColumn("address", "text", (column) => column.notNull())
    .addColumn("state", "text", (column) => column.notNull())
    .addColumn("payment_id", "text")
    .addColumn("shipment_id", "text")
    .addColumn("cancellation_reason", "text")
    // The saga runner's bookkeeping: tries of the current step, when to try next, who holds it.
    .addColumn("attempts", "integer", (column) => column.notNull().defaultTo(0))
    .addColumn("next_attempt_at", "bigint", (column) => column.notNull())
    .addColumn("lease_until", "bigint")
    .addColumn("last_error", "text")
    // The trace of the PlaceOrder call, so every step of the saga joins it.
    .addColumn("traceparent", "text")
    .addColumn("created_at", "bigint", (column) => column.notNull())
    .addColumn("updated_at", "bigint", (column) => column.notNull())
    .execute();
  await db.schema.createIndex("orders_due").on("orders").columns(["state", "next_attempt_at"]).execute();
  await db.schema.createIndex("orders_user").on("orders").column("user_id").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("orders").execute();
}
