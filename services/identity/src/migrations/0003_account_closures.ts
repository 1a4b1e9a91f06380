import type { Kysely } from "kysely";

/**
 * Account closures (the account-closure choreography, docs/decisions/composition.md): a user whose
 * closure was requested can no longer sign in; each closure records which participants have
 * reported, so identity knows when the account is closed and when a closure is stuck.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("users").addColumn("closure_requested_at", "bigint").execute();
  await db.schema
    .createTable("account_closures")
    .addColumn("user_id", "text", (column) => column.primaryKey())
    .addColumn("requested_at", "bigint", (column) => column.notNull())
    .addColumn("requested_by", "text", (column) => column.notNull())
    .addColumn("state", "text", (column) => column.notNull())
    .addColumn("closed_at", "bigint")
    .execute();
  await db.schema
    .createTable("account_closure_reports")
    .addColumn("user_id", "text", (column) => column.notNull())
    .addColumn("participant", "text", (column) => column.notNull())
    .addColumn("reported_at", "bigint", (column) => column.notNull())
    .addPrimaryKeyConstraint("account_closure_reports_pk", ["user_id", "participant"])
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("account_closure_reports").execute();
  await db.schema.dropTable("account_closures").execute();
  await db.schema.alterTable("users").dropColumn("closure_requested_at").execute();
}
