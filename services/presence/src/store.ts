import { preparedQuery, type PlatformTables } from "@meshwork/platform";
import type { Kysely, Transaction } from "kysely";
import type { OnlineSession } from "./domain/online.ts";
import * as sessions from "./migrations/0001_sessions.ts";
import * as endedSessions from "./migrations/0002_ended_sessions.ts";
import * as closedAccounts from "./migrations/0003_closed_accounts.ts";

export const migrations = { "0001_sessions": sessions, "0002_ended_sessions": endedSessions, "0003_closed_accounts": closedAccounts };

/** Tombstones outlive any token, so a late SignedIn can never bring an ended session back. */
const TOMBSTONE_RETENTION_MS = 24 * 3_600_000;

export interface PresenceTables {
  online_sessions: {
    session_id: string;
    user_id: string;
    email: string;
    display_name: string;
    started_at: number;
    expires_at: number;
  };
  ended_sessions: {
    session_id: string;
    ended_at: number;
  };
  closed_accounts: {
    user_id: string;
    closed_at: number;
  };
}

export type PresenceDatabase = PresenceTables & PlatformTables;
type Db = Kysely<PresenceDatabase> | Transaction<PresenceDatabase>;

/** The only module that speaks SQL for presence. */
/**
 * Adds a session unless it has already ended (its SignedOut may arrive first after a redelivery)
 * or its account is closed.
 */
export async function addSession(db: Db, session: OnlineSession): Promise<void> {
  await insertLiveSession.execute(db, session.sessionId, session.userId, session.email, session.displayName, session.startedAt, session.expiresAt);
}

// addSession runs for every sign-in event: the two checks and the insert are one statement
// (`insert ... select ... where not exists`), compiled once (preparedQuery). Three statements cost
// a consumer two more round trips through the driver per event (docs/performance.md, sixth round).
// The casts give PostgreSQL the parameters' types, which an INSERT ... SELECT does not infer.
const insertLiveSession = preparedQuery(
  (db: Kysely<PresenceDatabase>, sessionId: string, userId: string, email: string, displayName: string, startedAt: number, expiresAt: number) =>
    db
      .insertInto("online_sessions")
      .columns(["session_id", "user_id", "email", "display_name", "started_at", "expires_at"])
      .expression(
        db
          .selectNoFrom((eb) => [
            eb.cast<string>(eb.val(sessionId), "text").as("session_id"),
            eb.cast<string>(eb.val(userId), "text").as("user_id"),
            eb.cast<string>(eb.val(email), "text").as("email"),
            eb.cast<string>(eb.val(displayName), "text").as("display_name"),
            eb.cast<number>(eb.val(startedAt), "bigint").as("started_at"),
            eb.cast<number>(eb.val(expiresAt), "bigint").as("expires_at"),
          ])
          .where((eb) =>
            eb.and([
              eb.not(eb.exists(eb.selectFrom("ended_sessions").select("session_id").where("session_id", "=", sessionId))),
              eb.not(eb.exists(eb.selectFrom("closed_accounts").select("user_id").where("user_id", "=", userId))),
            ]),
          ),
      )
      .onConflict((conflict) => conflict.column("session_id").doNothing()),
);

export async function endSession(db: Db, sessionId: string, endedAt: number): Promise<void> {
  await db.deleteFrom("online_sessions").where("session_id", "=", sessionId).execute();
  await db.insertInto("ended_sessions").values({ session_id: sessionId, ended_at: endedAt }).onConflict((conflict) => conflict.column("session_id").doNothing()).execute();
}

export async function countOnlineUsers(db: Db, now: number): Promise<number> {
  const { rows } = await onlineUsers.execute(db, now);
  return Number(rows[0]?.count ?? 0);
}

export async function countOnlineSessions(db: Db, now: number): Promise<number> {
  const { rows } = await onlineSessions.execute(db, now);
  return Number(rows[0]?.count ?? 0);
}

// The counts answer GetOnlineCount, the service's most frequent call: compiled once (preparedQuery).
const onlineUsers = preparedQuery((db: Kysely<PresenceDatabase>, now: number) =>
  db
    .selectFrom("online_sessions")
    .select((eb) => eb.fn.count<number>("user_id").distinct().as("count"))
    .where("expires_at", ">", now),
);
const onlineSessions = preparedQuery((db: Kysely<PresenceDatabase>, now: number) =>
  db.selectFrom("online_sessions").select((eb) => eb.fn.countAll<number>().as("count")).where("expires_at", ">", now),
);

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
  await db.deleteFrom("ended_sessions").where("ended_at", "<=", now - TOMBSTONE_RETENTION_MS).execute();
  return Number(result.numDeletedRows);
}

/**
 * Ends every session of a closed account and remembers the account; the number of sessions ended,
 * or undefined when the account was already closed here (a redelivery, or a rebuild's replay).
 */
export async function closeAccount(db: Db, userId: string, at: number): Promise<number | undefined> {
  const sessions = await db.selectFrom("online_sessions").select("session_id").where("user_id", "=", userId).execute();
  for (const session of sessions) await endSession(db, session.session_id, at);
  const result = await db.insertInto("closed_accounts").values({ user_id: userId, closed_at: at }).onConflict((conflict) => conflict.column("user_id").doNothing()).executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1 ? sessions.length : undefined;
}

/** Clears the projection for a rebuild; closed accounts stay, as they record what presence reported. */
export async function clearProjection(db: Db): Promise<void> {
  await db.deleteFrom("online_sessions").execute();
  await db.deleteFrom("ended_sessions").execute();
}
