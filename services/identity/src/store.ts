import type { PlatformTables, Role } from "@meshwork/platform";
import type { Kysely, Transaction } from "kysely";
import * as usersAndSessions from "./migrations/0001_users_and_sessions.ts";

export const migrations = { "0001_users_and_sessions": usersAndSessions };

export interface IdentityTables {
  users: {
    id: string;
    email: string;
    display_name: string;
    password_hash: string;
    roles: string;
    created_at: number;
  };
  sessions: {
    id: string;
    user_id: string;
    expires_at: number;
    ended_at: number | null;
  };
}

export interface UserRecord {
  id: string;
  email: string;
  displayName: string;
  passwordHash: string;
  roles: Role[];
}

export type IdentityDatabase = IdentityTables & PlatformTables;
type Db = Kysely<IdentityDatabase> | Transaction<IdentityDatabase>;

/** The only module that speaks SQL for identity. */
export async function findUserByEmail(db: Db, email: string): Promise<UserRecord | undefined> {
  const row = await db.selectFrom("users").selectAll().where("email", "=", email).executeTakeFirst();
  return row && toUser(row);
}

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
    })
    .onConflict((conflict) => conflict.column("email").doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function updateRoles(db: Db, userId: string, roles: Role[]): Promise<void> {
  await db.updateTable("users").set({ roles: JSON.stringify(roles) }).where("id", "=", userId).execute();
}

export async function insertSession(db: Db, session: { id: string; userId: string; expiresAt: number }): Promise<void> {
  await db.insertInto("sessions").values({ id: session.id, user_id: session.userId, expires_at: session.expiresAt, ended_at: null }).execute();
}

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
  return { id: row.id, email: row.email, displayName: row.display_name, passwordHash: row.password_hash, roles: JSON.parse(row.roles) as Role[] };
}
