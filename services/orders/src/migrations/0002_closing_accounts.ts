import type { Kysely } from "kysely";

/**
 * orders' part of the account-closure choreography. An order whose account is closing is
 * withdrawn by its saga (refunded if charged); the account's row says how many were, and whether
 * orders has reported (AccountOrdersClosed) once none is left unfinished.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("orders").addColumn("withdrawn", "integer", (column) => column.notNull().defaultTo(0)).execute();
  await db.schema
    .createTable("closing_accounts")
    .addColumn("user_id", "text", (column) => column.primaryKey())
    .addColumn("requested_at", "bigint", (column) => column.notNull())
    .addColumn("orders_withdrawn", "integer", (column) => column.notNull())
    .addColumn("reported_at", "bigint")
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("closing_accounts").execute();
  await db.schema.alterTable("orders").dropColumn("withdrawn").execute();
}
