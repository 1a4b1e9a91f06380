import type { PlatformTables } from "@meshwork/platform";
import { sql, type Kysely, type Transaction } from "kysely";
import * as auditEvents from "./migrations/0001_audit_events.ts";
import * as erasedUsers from "./migrations/0002_erased_users.ts";

export const migrations = { "0001_audit_events": auditEvents, "0002_erased_users": erasedUsers };

export interface AuditTables {
  audit_events: {
    id: string;
    type: string;
    subject: string;
    source: string;
    time: number;
    trace_id: string;
    user_id: string;
    stream: string;
    stream_sequence: number;
    /** base64 of the bytes as received: text, so the column is the same in SQLite and PostgreSQL. */
    payload: string;
    received_at: number;
  };
  erased_users: {
    user_id: string;
    erased_at: number;
  };
}

export type AuditDatabase = AuditTables & PlatformTables;
type Db = Kysely<AuditDatabase> | Transaction<AuditDatabase>;
export type StoredEvent = AuditTables["audit_events"];

export interface EventFilter {
  type?: string;
  subjectPrefix?: string;
  userId?: string;
  since?: number;
  until?: number;
  afterId?: string;
  limit: number;
}

/** The only module that speaks SQL for audit. */
export async function storeEvent(db: Db, event: StoredEvent): Promise<void> {
  await db.insertInto("audit_events").values(event).onConflict((conflict) => conflict.column("id").doNothing()).execute();
}

export async function getEvent(db: Db, id: string): Promise<StoredEvent | undefined> {
  return db.selectFrom("audit_events").selectAll().where("id", "=", id).executeTakeFirst();
}

/** Ordered by id: ids are UUIDv7, so this is publication order, and paging by id is stable. */
export async function listEvents(db: Db, filter: EventFilter): Promise<StoredEvent[]> {
  let query = db.selectFrom("audit_events").selectAll().orderBy("id").limit(filter.limit);
  if (filter.type) query = query.where("type", "=", filter.type);
  // substr rather than LIKE: subjects are full of "_", which LIKE would read as a wildcard.
  if (filter.subjectPrefix) query = query.where(sql<string>`substr(subject, 1, ${filter.subjectPrefix.length})`, "=", filter.subjectPrefix);
  if (filter.userId) query = query.where("user_id", "=", filter.userId);
  if (filter.since !== undefined) query = query.where("time", ">=", filter.since);
  if (filter.until !== undefined) query = query.where("time", "<", filter.until);
  if (filter.afterId) query = query.where("id", ">", filter.afterId);
  return query.execute();
}

export async function isErased(db: Db, userId: string): Promise<boolean> {
  return (await db.selectFrom("erased_users").select("user_id").where("user_id", "=", userId).executeTakeFirst()) !== undefined;
}

/**
 * Replaces the payload of every kept event about `userId` with its tombstone and remembers the
 * user; the number of events erased, or undefined when the user was erased already.
 */
export async function eraseUser(db: Db, userId: string, at: number, tombstone: (event: StoredEvent) => string): Promise<number | undefined> {
  const inserted = await db.insertInto("erased_users").values({ user_id: userId, erased_at: at }).onConflict((conflict) => conflict.column("user_id").doNothing()).executeTakeFirst();
  if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) !== 1) return undefined;
  const events = await db.selectFrom("audit_events").selectAll().where("user_id", "=", userId).execute();
  for (const event of events) await db.updateTable("audit_events").set({ payload: tombstone(event) }).where("id", "=", event.id).execute();
  return events.length;
}
