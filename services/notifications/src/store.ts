import type { PlatformTables } from "@meshwork/platform";
import type { Kysely, Transaction } from "kysely";
import type { NotificationKind } from "./domain/messages.ts";
import * as notifications from "./migrations/0001_notifications.ts";

export const migrations = { "0001_notifications": notifications };

export interface NotificationsTables {
  notifications: {
    id: string;
    user_id: string;
    kind: string;
    recipient: string;
    subject: string;
    body: string;
    sent_at: number;
  };
}

export interface NotificationRecord {
  id: string;
  userId: string;
  kind: NotificationKind;
  recipient: string;
  subject: string;
  body: string;
  sentAt: number;
}

export type NotificationsDatabase = NotificationsTables & PlatformTables;
type Db = Kysely<NotificationsDatabase> | Transaction<NotificationsDatabase>;

/** The only module that speaks SQL for notifications. */
/** Records a message; false when the user already got one of its kind (the unique index decides). */
export async function insertNotification(db: Db, notification: NotificationRecord): Promise<boolean> {
  const result = await db
    .insertInto("notifications")
    .values({
      id: notification.id,
      user_id: notification.userId,
      kind: notification.kind,
      recipient: notification.recipient,
      subject: notification.subject,
      body: notification.body,
      sent_at: notification.sentAt,
    })
    .onConflict((conflict) => conflict.columns(["user_id", "kind"]).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0n) === 1;
}

export async function notificationsFor(db: Db, userId: string): Promise<NotificationRecord[]> {
  const rows = await db.selectFrom("notifications").selectAll().where("user_id", "=", userId).orderBy("sent_at", "desc").orderBy("id", "desc").execute();
  return rows.map((row) => ({
    id: row.id,
    userId: row.user_id,
    kind: row.kind as NotificationKind,
    recipient: row.recipient,
    subject: row.subject,
    body: row.body,
    sentAt: Number(row.sent_at),
  }));
}
