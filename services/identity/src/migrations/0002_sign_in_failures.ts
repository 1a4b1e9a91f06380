import type { Kysely } from "kysely";

/** Sign-in failures per throttle key, shared by every identity replica (domain/throttle.ts). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("sign_in_failures")
    .addColumn("throttle_key", "text", (column) => column.notNull())
    .addColumn("failed_at", "bigint", (column) => column.notNull())
    .execute();
  await db.schema.createIndex("sign_in_failures_by_key").on("sign_in_failures").columns(["throttle_key", "failed_at"]).execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("sign_in_failures").execute();
}
