import type { Kysely } from "kysely";

export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("shipments")
    .addColumn("id", "text", (column) => column.primaryKey())
    // Unique: two racing retries of one shipment cannot both insert.
    .addColumn("idempotency_key", "text", (column) => column.notNull().unique())
    .addColumn("order_id", "text", (column) => column.notNull())
    .addColumn("user_id", "text", (column) => column.notNull())
    .addColumn("address", "text", (column) => column.notNull())
    .addColumn("country_code", "text", (column) => column.notNull())
    .addColumn("tracking_number", "text", (column) => column.notNull())
    .addColumn("created_at", "bigint", (column) => column.notNull())
    .execute();
  await db.schema.createIndex("shipments_order").on("shipments").column("order_id").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("shipments").execute();
}
