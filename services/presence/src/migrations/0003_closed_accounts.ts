import type { Kysely } from "kysely";

/**
 * Accounts whose closure presence has carried out (the account-closure choreography). Their
 * sign-ins are never projected again, and the row remembers that presence has reported, so a
 * rebuild that replays the closure does not report it twice.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("closed_accounts")
    .addColumn("user_id", "text", (column) => column.primaryKey())
    .addColumn("closed_at", "bigint", (column) => column.notNull())
    .execute();
}
