import type { Kysely } from "kysely";

/**
 * Sessions that have signed out. After a crash, JetStream may redeliver a SignedIn after the
 * SignedOut that follows it; remembering ended sessions keeps the projection order-insensitive.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("ended_sessions")
    .addColumn("session_id", "text", (column) => column.primaryKey())
    .addColumn("ended_at", "bigint", (column) => column.notNull())
    .execute();
}
