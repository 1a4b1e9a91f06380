import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("payments")
    .addColumn("id", "text", (column) => column.primaryKey())
    // Unique: two racing retries of one charge cannot both insert.
    .addColumn("charge_key", "text", (column) => column.notNull().unique())
    .addColumn("order_id", "text", (column) => column.notNull())
    .addColumn("user_id", "text", (column) => column.notNull())
    .addColumn("amount_cents", "bigint", (column) => column.notNull())
    .addColumn("currency", "text", (column) => column.notNull())
    .addColumn("state", "text", (column) => column.notNull())
    .addColumn("charged_at", "bigint", (column) => column.notNull())
    .addColumn("refund_key", "text")
    .addColumn("refund_reason", "text")
    .addColumn("refunded_at", "bigint")
    .execute();
  await db.schema.createIndex("payments_order").on("payments").column("order_id").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("payments").execute();
}
