import type { PlatformTables } from "@meshwork/platform";
import type { Kysely, Transaction } from "kysely";
import type { OnlineSession } from "./domain/online.ts";
import * as sessions from "./migrations/0001_sessions.ts";

export const migrations = { "0001_sessions": sessions };

export interface PresenceTables {
  online_sessions: {
    session_id: string;
    user_id: string;
    email: string;
    display_name: string;
    started_at: number;
    expires_at: number;
  };
}

export type PresenceDatabase = PresenceTables & PlatformTables;
type Db = Kysely<PresenceDatabase> | Transaction<PresenceDatabase>;

/** The only module that speaks SQL for presence. */
export async function addSession(db: Db, session: OnlineSession): Promise<void> {
  await db
    .insertInto("online_sessions")
    .values({
      session_id: session.sessionId,
      user_id: session.userId,
      email: session.email,
      display_name: session.displayName,
      started_at: session.startedAt,
      expires_at: session.expiresAt,
    })
    .onConflict((conflict) => conflict.column("session_id").doNothing())
    .execute();
}

export async function removeSession(db: Db, sessionId: string): Promise<void> {
  await db.deleteFrom("online_sessions").where("session_id", "=", sessionId).execute();
}

export async function countOnlineUsers(db: Db, now: number): Promise<number> {
  const row = await db
    .selectFrom("online_sessions")
    .select((eb) => eb.fn.count<number>("user_id").distinct().as("count"))
    .where("expires_at", ">", now)
    .executeTakeFirst();
  return Number(row?.count ?? 0);
}

export async function liveSessions(db: Db, now: number): Promise<OnlineSession[]> {
  const rows = await db.selectFrom("online_sessions").selectAll().where("expires_at", ">", now).orderBy("session_id").execute();
  return rows.map((row) => ({
    sessionId: row.session_id,
    userId: row.user_id,
    email: row.email,
    displayName: row.display_name,
    startedAt: Number(row.started_at),
    expiresAt: Number(row.expires_at),
  }));
}

export async function sweepExpired(db: Db, now: number): Promise<number> {
  const result = await db.deleteFrom("online_sessions").where("expires_at", "<=", now).executeTakeFirst();
  return Number(result.numDeletedRows);
}

export async function clearProjection(db: Db): Promise<void> {
  await db.deleteFrom("online_sessions").execute();
}
