import { preparedQuery, type PlatformTables, type Role } from "@meshwork/platform";
import type { Kysely, Transaction } from "kysely";
import type { FailureLog } from "./domain/throttle.ts";
import * as usersAndSessions from "./migrations/0001_users_and_sessions.ts";
import * as signInFailures from "./migrations/0002_sign_in_failures.ts";
import * as accountClosures from "./migrations/0003_account_closures.ts";
import type { ClosureState } from "./domain/closure.ts";

export const migrations = { "0001_users_and_sessions": usersAndSessions, "0002_sign_in_failures": signInFailures, "0003_account_closures": accountClosures };

export interface IdentityTables {
  users: {
    id: string;
    email: string;
    display_name: string;
    password_hash: string;
    roles: string;
    created_at: number;
    /** Set once the account's closure is requested: it can no longer sign in. */
    closure_requested_at: number | null;
  };
  sessions: {
    id: string;
    user_id: string;
    expires_at: number;
    ended_at: number | null;
  };
  sign_in_failures: {
    throttle_key: string;
    failed_at: number;
  };
  account_closures: {
    user_id: string;
    requested_at: number;
    requested_by: string;
    state: string;
    closed_at: number | null;
  };
  account_closure_reports: {
    user_id: string;
    participant: string;
    reported_at: number;
  };
}

export interface ClosureRecord {
  userId: string;
  state: ClosureState;
  requestedAt: number;
  requestedBy: string;
  closedAt: number | null;
  reported: string[];
}

export interface UserRecord {
  id: string;
  email: string;
  displayName: string;
  passwordHash: string;
  roles: Role[];
  closureRequestedAt?: number | null;
}

export type IdentityDatabase = IdentityTables & PlatformTables;
type Db = Kysely<IdentityDatabase> | Transaction<IdentityDatabase>;

/** The only module that speaks SQL for identity. */
export async function findUserByEmail(db: Db, email: string): Promise<UserRecord | undefined> {
  const row = (await userByEmail.execute(db, email)).rows[0];
  return row && toUser(row);
}

// Every sign-in reads its user, its two throttle keys and writes its session: those statements are
// compiled once (preparedQuery), and on SQLite run without Kysely's executor (docs/performance.md).
const userByEmail = preparedQuery((db: Kysely<IdentityDatabase>, email: string) => db.selectFrom("users").selectAll().where("email", "=", email));

export async function findUserById(db: Db, id: string): Promise<UserRecord | undefined> {
  const row = await db.selectFrom("users").selectAll().where("id", "=", id).executeTakeFirst();
  return row && toUser(row);
}

/** Inserts a user; false when the email is taken (the unique index decides, so two racing sign-ups cannot both win). */
export async function insertUser(db: Db, user: UserRecord): Promise<boolean> {
  const result = await db
    .insertInto("users")
    .values({
      id: user.id,
      email: user.email,
      display_name: user.displayName,
      password_hash: user.passwordHash,
      roles: JSON.stringify(user.roles),
      created_at: Date.now(),
      closure_requested_at: null,
    })
    .onConflict((conflict) => conflict.column("email").doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function updateRoles(db: Db, userId: string, roles: Role[]): Promise<void> {
  await db.updateTable("users").set({ roles: JSON.stringify(roles) }).where("id", "=", userId).execute();
}

export async function insertSession(db: Db, session: { id: string; userId: string; expiresAt: number }): Promise<void> {
  await insertSessionRow.execute(db, session.id, session.userId, session.expiresAt);
}

const insertSessionRow = preparedQuery((db: Kysely<IdentityDatabase>, id: string, userId: string, expiresAt: number) =>
  db.insertInto("sessions").values({ id, user_id: userId, expires_at: expiresAt, ended_at: null }),
);

/** Ends a live session; false when it was already ended or never existed. */
export async function endSession(db: Db, sessionId: string, userId: string): Promise<boolean> {
  const result = await db
    .updateTable("sessions")
    .set({ ended_at: Date.now() })
    .where("id", "=", sessionId)
    .where("user_id", "=", userId)
    .where("ended_at", "is", null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

function toUser(row: IdentityTables["users"]): UserRecord {
  return {
    id: row.id,
    email: row.email,
    displayName: row.display_name,
    passwordHash: row.password_hash,
    roles: JSON.parse(row.roles) as Role[],
    closureRequestedAt: row.closure_requested_at === null ? null : Number(row.closure_requested_at),
  };
}

/** Starts a closure; false when one was already requested (the first request stands). */
export async function insertClosure(db: Db, closure: { userId: string; requestedAt: number; requestedBy: string }): Promise<boolean> {
  const result = await db
    .insertInto("account_closures")
    .values({ user_id: closure.userId, requested_at: closure.requestedAt, requested_by: closure.requestedBy, state: "PENDING", closed_at: null })
    .onConflict((conflict) => conflict.column("user_id").doNothing())
    .executeTakeFirst();
  if (Number(result.numInsertedOrUpdatedRows ?? 0n) !== 1) return false;
  await db.updateTable("users").set({ closure_requested_at: closure.requestedAt }).where("id", "=", closure.userId).execute();
  return true;
}

export async function findClosure(db: Db, userId: string): Promise<ClosureRecord | undefined> {
  const row = await db.selectFrom("account_closures").selectAll().where("user_id", "=", userId).executeTakeFirst();
  if (!row) return undefined;
  const reports = await db.selectFrom("account_closure_reports").select("participant").where("user_id", "=", userId).orderBy("participant").execute();
  return {
    userId: row.user_id,
    state: row.state as ClosureState,
    requestedAt: Number(row.requested_at),
    requestedBy: row.requested_by,
    closedAt: row.closed_at === null ? null : Number(row.closed_at),
    reported: reports.map((report) => report.participant),
  };
}

/** Records a participant's report once; a redelivered report changes nothing. */
export async function recordClosureReport(db: Db, userId: string, participant: string, at: number): Promise<void> {
  await db
    .insertInto("account_closure_reports")
    .values({ user_id: userId, participant, reported_at: at })
    .onConflict((conflict) => conflict.columns(["user_id", "participant"]).doNothing())
    .execute();
}

export async function setClosureState(db: Db, userId: string, state: ClosureState, closedAt: number | null): Promise<void> {
  await db.updateTable("account_closures").set({ state, closed_at: closedAt }).where("user_id", "=", userId).execute();
}

/** Pending closures requested before `before`: the candidates for STUCK. */
export async function pendingClosuresBefore(db: Db, before: number): Promise<string[]> {
  const rows = await db.selectFrom("account_closures").select("user_id").where("state", "=", "PENDING").where("requested_at", "<", before).execute();
  return rows.map((row) => row.user_id);
}

export async function countClosuresByState(db: Db): Promise<Map<ClosureState, number>> {
  const rows = await db.selectFrom("account_closures").select(["state", (eb) => eb.fn.countAll<number>().as("count")]).groupBy("state").execute();
  return new Map(rows.map((row) => [row.state as ClosureState, Number(row.count)]));
}

/** Replaces what identifies the person; the id, the roles and the closure record stay. */
export async function eraseUser(db: Db, userId: string, email: string): Promise<void> {
  await db.updateTable("users").set({ email, display_name: "", password_hash: "" }).where("id", "=", userId).execute();
  await db.deleteFrom("sessions").where("user_id", "=", userId).execute();
}

/** The sign-in throttle's failures, in the database every identity replica shares. */
const failuresOf = preparedQuery((db: Kysely<IdentityDatabase>, key: string, after: number) =>
  db.selectFrom("sign_in_failures").select("failed_at").where("throttle_key", "=", key).where("failed_at", ">", after).orderBy("failed_at"),
);

export function failureLog(db: Kysely<IdentityDatabase>): FailureLog {
  return {
    async failuresAfter(key, after) {
      const { rows } = await failuresOf.execute(db, key, after);
      // PostgreSQL returns bigint as a string.
      return rows.map((row) => Number(row.failed_at));
    },
    async record(key, at, forgetUpTo) {
      await db.transaction().execute(async (trx) => {
        await trx.deleteFrom("sign_in_failures").where("throttle_key", "=", key).where("failed_at", "<=", forgetUpTo).execute();
        await trx.insertInto("sign_in_failures").values({ throttle_key: key, failed_at: at }).execute();
      });
    },
    async clear(key) {
      await db.deleteFrom("sign_in_failures").where("throttle_key", "=", key).execute();
    },
  };
}
