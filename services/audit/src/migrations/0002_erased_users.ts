import type { Kysely } from "kysely";

/**
 * Users whose personal data audit has erased (the account-closure choreography). An event about
 * one of them that arrives later, or again in a replay, is kept already erased.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("erased_users")
    .addColumn("user_id", "text", (column) => column.primaryKey())
    .addColumn("erased_at", "bigint", (column) => column.notNull())
    .execute();
}
